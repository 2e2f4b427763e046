//! Aligned tables for the commands that print one (`list`, `stats`,
//! `image list`, `layer list`, `cache list`, `zfs list`, ...); each of
//! them also has `--format json`. Layout by comfy-table: no borders, two
//! spaces between columns, like `docker ps`.

use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};

/// Prints `rows` under `header`; the columns named in `right` are
/// right-aligned (sizes, counts).
pub fn print(header: &[&str], right: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let mut t = Table::new();
    t.load_preset(NOTHING).set_content_arrangement(ContentArrangement::Disabled).set_header(header.to_vec());
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
    for line in t.lines() {
        println!("{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use comfy_table::{presets::NOTHING, Table};

    #[test]
    fn columns_line_up_under_their_headers() {
        let mut t = Table::new();
        t.load_preset(NOTHING).set_header(vec!["ID", "STATUS"]).add_row(vec!["a-long-id", "running"]);
        let lines: Vec<String> = t.lines().collect();
        assert_eq!(lines[0].find("STATUS"), lines[1].find("running"), "{lines:?}");
    }
}
