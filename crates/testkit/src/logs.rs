//! Server logs: what a failed test or benchmark shows of them, and markers written into them.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// The last `n` lines of a file (empty if it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A whole log so far (empty if it cannot be read).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Appends a line to an existing log, so that a reader can tell a restart or a SIGKILL apart
/// from the server's own output; a missing log is left missing.
pub fn mark(path: &Path, line: &str) {
    if let Ok(mut f) = OpenOptions::new().append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// Opens a log for appending (creating it), for a server's stdout and stderr.
pub fn append(path: &Path) -> crate::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(crate::Error::io(format!("cannot open {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_mark() {
        let p = std::env::temp_dir().join(format!("paddock-testkit-log-{}", std::process::id()));
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        mark(&p, "d");
        assert_eq!(tail(&p, 2), "c\nd");
        assert_eq!(tail(&p, 10), "a\nb\nc\nd");
        std::fs::remove_file(&p).unwrap();
        assert_eq!(tail(&p, 2), "");
        mark(&p, "x");
        assert!(!p.exists());
    }
}
