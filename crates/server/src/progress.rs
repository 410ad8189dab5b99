//! Progress bars for long work at start (loading a large snapshot), on a terminal only: a
//! server whose stderr goes to a file, a pipe or a journal shows none, so logs stay lines.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Work smaller than this finishes too soon for a bar to help.
const MIN_BYTES: u64 = 16 << 20;

/// A bar that appears once there is enough work to show, and only on a terminal.
pub struct Bar {
    what: &'static str,
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Bar {
    pub fn new(what: &'static str) -> Bar {
        Bar {
            what,
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// `done` of `total` bytes.
    pub fn bytes(&mut self, done: u64, total: u64) {
        if !self.terminal || total < MIN_BYTES {
            return;
        }
        let what = self.what;
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta} left)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_message(what);
            // Drawn at once: a bar that only appears after its refresh interval would miss
            // short loads entirely.
            b.tick();
            b
        });
        bar.set_position(done);
    }

    /// Takes the bar off the screen (the log line that follows says what was loaded).
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
