//! Path validation as ZooKeeper's PathUtils does it (clients and the server share the rules).

/// Why a path is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath(pub &'static str);

impl std::fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn bad_char(c: char) -> bool {
    let u = c as u32;
    u <= 0x1F
        || (0x7F..=0x9F).contains(&u)
        || (0xD800..=0xF8FF).contains(&u)
        || (0xFFF0..=0xFFFF).contains(&u)
}

/// Full validation: absolute, no trailing slash (except root), no empty, `.` or `..` component,
/// no control, surrogate, private-use or non-character code units.
pub fn validate(path: &str) -> Result<(), InvalidPath> {
    if path.is_empty() {
        return Err(InvalidPath("Path length must be > 0"));
    }
    if !path.starts_with('/') {
        return Err(InvalidPath("Path must start with / character"));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(InvalidPath("Path must not end with / character"));
    }
    for comp in path[1..].split('/') {
        if comp.is_empty() {
            return Err(InvalidPath("empty node name specified"));
        }
        if comp == "." || comp == ".." {
            return Err(InvalidPath("relative paths not allowed"));
        }
    }
    if path.chars().any(|c| c == '\0') {
        return Err(InvalidPath("null character not allowed"));
    }
    if path.chars().any(bad_char) {
        return Err(InvalidPath("invalid character"));
    }
    Ok(())
}

/// The parent of a valid non-root path ("/a" -> "/", "/a/b" -> "/a").
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last component of a path.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/...", "/zookeeper", "/a b"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/a/..",
            "/a\0",
            "/a\u{1}",
            "/\u{E000}",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parent_and_name() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(name("/a/b/c"), "c");
    }
}
