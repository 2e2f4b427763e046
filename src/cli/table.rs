//! Aligned tables for the commands that print one (`list`, `stats`,
//! `image list`, `layer list`, `cache list`, `zfs list`, ...); each of
//! them also has `--format json`. Layout by comfy-table: no borders, two
//! spaces between columns, like `docker ps`.

use comfy_table::{presets::NOTHING, Cell, CellAlignment, ContentArrangement, Table};

/// Prints `rows` under `header`; the values of the columns named in
/// `right` are right-aligned (sizes, counts). Every header starts where its
/// column starts: a right-aligned header over values of another width (SIZE
/// over `1.1 MB`) read as if the column before it were misaligned.
pub fn print(header: &[&str], right: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    for line in render(header, right, rows) {
        println!("{line}");
    }
}

/// The lines [`print`] prints, without trailing blanks.
fn render(header: &[&str], right: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Vec<String> {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(header.iter().map(|h| Cell::new(h).set_alignment(CellAlignment::Left)));
    for r in rows {
        t.add_row(r);
    }
    for (i, h) in header.iter().enumerate() {
        if let Some(c) = t.column_mut(i) {
            c.set_padding((0, if i + 1 == header.len() { 0 } else { 2 }));
            if right.contains(h) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    t.lines().map(|l| l.trim_end().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use comfy_table::{presets::NOTHING, Table};

    #[test]
    fn image_list_columns_line_up() {
        let row = |a: &str, b: &str, c: &str, d: &str| vec![a.to_string(), b.to_string(), c.to_string(), d.to_string()];
        let lines = super::render(
            &["NAME", "DIGEST", "SIZE", "CREATED"],
            &["SIZE"],
            [
                row("localhost/cli:1", "0123456789ab", "1.2 MB", "2024-01-01T00:00:00Z"),
                row("  layer", "abcdef012345", "800 B", ""),
                row("docker.io/library/busybox:latest", "fedcba987654", "4.1 MB", "-"),
            ],
        );
        let col = |l: &str, w: &str| l.find(w);
        for (l, d) in lines.iter().skip(1).zip(["0123456789ab", "abcdef012345", "fedcba987654"]) {
            assert_eq!(col(&lines[0], "DIGEST"), col(l, d), "{lines:#?}");
        }
        // SIZE's header starts where its widest value starts; values end together
        assert_eq!(col(&lines[0], "SIZE"), col(&lines[1], "1.2 MB"), "{lines:#?}");
        assert_eq!(col(&lines[2], "800 B").map(|c| c + 5), col(&lines[1], "1.2 MB").map(|c| c + 6), "{lines:#?}");
    }

    #[test]
    fn columns_line_up_under_their_headers() {
        let mut t = Table::new();
        t.load_preset(NOTHING).set_header(vec!["ID", "STATUS"]).add_row(vec!["a-long-id", "running"]);
        let lines: Vec<String> = t.lines().collect();
        assert_eq!(lines[0].find("STATUS"), lines[1].find("running"), "{lines:?}");
    }
}
