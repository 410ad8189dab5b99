//! Quotas as ZooKeeper keeps them: limits written by clients at
//! `/zookeeper/quota/<path>/zookeeper_limits`, usage maintained by the server in place at
//! `/zookeeper/quota/<path>/zookeeper_stats`, hard limits enforced only when asked.

use std::collections::BTreeMap;

/// Where quota nodes live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMITS: &str = "zookeeper_limits";
const STATS: &str = "zookeeper_stats";

/// Limits and usage of one quota'd subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    pub count_limit: i64,
    pub bytes_limit: i64,
    pub count_hard: i64,
    pub bytes_hard: i64,
    pub count: i64,
    pub bytes: i64,
}

/// Every quota'd subtree by its path.
#[derive(Debug, Default)]
pub struct Quotas {
    by_path: BTreeMap<String, Quota>,
}

/// The subtree a quota node (limits or stats) belongs to, if `path` is one.
pub fn limits_target(path: &str) -> Option<String> {
    let rest = path.strip_prefix(QUOTA_ROOT)?;
    let target = rest
        .strip_suffix(LIMITS)
        .or_else(|| rest.strip_suffix(STATS))?;
    let target = target.strip_suffix('/')?;
    if target.is_empty() {
        return None;
    }
    Some(target.to_owned())
}

/// Parses `count=N,bytes=N[=;byteHardLimit=N;countHardLimit=N]`; missing values are -1.
pub fn parse_limits(text: &str) -> Quota {
    let mut q = Quota {
        count_limit: -1,
        bytes_limit: -1,
        count_hard: -1,
        bytes_hard: -1,
        ..Default::default()
    };
    for part in text.split([',', ';']) {
        let mut kv = part.split('=');
        let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
            continue;
        };
        let Ok(v) = v.trim().parse::<i64>() else {
            continue;
        };
        match k.trim() {
            "count" => q.count_limit = v,
            "bytes" => q.bytes_limit = v,
            "countHardLimit" => q.count_hard = v,
            "byteHardLimit" => q.bytes_hard = v,
            _ => {}
        }
    }
    q
}

impl Quotas {
    /// Sets (or replaces) the limits of a subtree, with its current usage.
    pub fn set_limits(&mut self, target: &str, text: &str, count: i64, bytes: i64) {
        let mut q = parse_limits(text);
        q.count = count;
        q.bytes = bytes;
        self.by_path.insert(target.to_owned(), q);
    }

    /// Drops the quota of a subtree.
    pub fn remove(&mut self, target: &str) {
        self.by_path.remove(target);
    }

    /// The deepest quota'd subtree containing `path`.
    fn covering<'a>(&'a self, path: &'a str) -> Option<&'a str> {
        if self.by_path.is_empty() || path.starts_with(QUOTA_ROOT) {
            return None;
        }
        let mut p = path;
        loop {
            if self.by_path.contains_key(p) {
                return Some(
                    self.by_path
                        .get_key_value(p)
                        .map(|(k, _)| k.as_str())
                        .unwrap_or(p),
                );
            }
            match p.rfind('/') {
                Some(0) if p.len() > 1 => p = "/",
                Some(i) if i > 0 => p = &p[..i],
                _ => return None,
            }
        }
    }

    /// Records usage growing by `count` nodes and `bytes` bytes at `path`.
    pub fn on_change(&mut self, path: &str, count: i64, bytes: i64) {
        if let Some(k) = self.covering(path).map(str::to_owned) {
            let q = self.by_path.get_mut(&k).expect("covering quota");
            q.count += count;
            q.bytes += bytes;
        }
    }

    /// The covering subtree and its usage as ZooKeeper writes it into `zookeeper_stats`.
    pub fn stats_text(&self, path: &str) -> Option<(String, String)> {
        let k = self.covering(path)?;
        let q = &self.by_path[k];
        Some((k.to_owned(), format!("count={},bytes={}", q.count, q.bytes)))
    }

    /// Whether growing by `count`/`bytes` at `path` breaks a hard limit.
    pub fn exceeded(&self, path: &str, count: i64, bytes: i64) -> bool {
        let Some(k) = self.covering(path) else {
            return false;
        };
        let q = &self.by_path[k];
        (q.count_hard >= 0 && count > 0 && q.count + count > q.count_hard)
            || (q.bytes_hard >= 0 && bytes > 0 && q.bytes + bytes > q.bytes_hard)
    }

    /// All quotas, for tools.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Quota)> {
        self.by_path.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_cover() {
        let q = parse_limits("count=10,bytes=-1=;byteHardLimit=100;countHardLimit=5");
        assert_eq!(
            (q.count_limit, q.bytes_limit, q.bytes_hard, q.count_hard),
            (10, -1, 100, 5)
        );
        assert_eq!(
            limits_target("/zookeeper/quota/a/b/zookeeper_limits").as_deref(),
            Some("/a/b")
        );
        assert_eq!(limits_target("/zookeeper/quota/zookeeper_limits"), None);
        let mut qs = Quotas::default();
        qs.set_limits("/a", "count=-1,bytes=-1=;countHardLimit=2", 1, 0);
        assert!(!qs.exceeded("/a/x", 1, 0));
        qs.on_change("/a/x", 1, 3);
        assert!(qs.exceeded("/a/y", 1, 0));
        assert!(!qs.exceeded("/b", 1, 0));
        assert_eq!(qs.stats_text("/a/x").unwrap().1, "count=2,bytes=3");
    }
}
