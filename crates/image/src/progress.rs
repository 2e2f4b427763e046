//! Per-layer progress bars on a terminal; silent otherwise.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: Option<MultiProgress>,
}

impl Progress {
    /// Bars only when stderr is a terminal and the caller did not ask for quiet.
    pub fn new(quiet: bool) -> Self {
        let on = !quiet && std::io::stderr().is_terminal();
        Progress {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    pub fn bar(&self, label: &str, total: u64) -> ProgressBar {
        let Some(m) = &self.multi else {
            return ProgressBar::hidden();
        };
        let pb = m.add(ProgressBar::new(total));
        let style =
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {bytes}/{total_bytes} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        pb.set_style(style);
        pb.set_prefix(label.to_string());
        pb
    }
}
