//! Four-letter words, in ZooKeeper's output formats (monitoring tools parse them).

/// The version clients see: ZooKeeper's leading number (clients pick features by it), then ours.
pub fn version_string() -> String {
    format!(
        "3.8.0-paddock-{}, built on {}",
        env!("CARGO_PKG_VERSION"),
        option_env!("PADDOCK_BUILD_DATE").unwrap_or("unknown")
    )
}

/// Stand-ins for the sizes of dataDir and dataLogDir in a four-letter word's text: walking
/// the directories touches the disk, which the core task never does, so the core renders the
/// text with these and `fill_dir_sizes` replaces them on a blocking thread.
pub(crate) const DATA_DIR_SIZE: &str = "\u{0}dataDirSize\u{0}";
pub(crate) const LOG_DIR_SIZE: &str = "\u{0}dataLogDirSize\u{0}";

/// Whether a four-letter word's text still needs the directory sizes.
pub fn needs_dir_sizes(text: &str) -> bool {
    text.contains(DATA_DIR_SIZE) || text.contains(LOG_DIR_SIZE)
}

/// Puts the directory sizes into a four-letter word's text (off the core task).
pub fn fill_dir_sizes(
    text: &str,
    data_dir: &std::path::Path,
    data_log_dir: &std::path::Path,
) -> String {
    text.replace(DATA_DIR_SIZE, &dir_size(data_dir).to_string())
        .replace(LOG_DIR_SIZE, &dir_size(data_log_dir).to_string())
}

pub(crate) fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

pub(crate) fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
