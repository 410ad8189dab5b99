//! The iteration order of Java's hash sets, which ZooKeeper's replies expose: the identities of
//! a connection (whoAmI, and the order in which `auth` ACL entries expand) and a session's
//! ephemerals (getEphemerals) come out in `HashSet` order. Scripts that compare zkCli output
//! with ZooKeeper's see that order, so Paddock reproduces it.

/// `java.lang.String.hashCode`: over UTF-16 code units, wrapping.
pub fn string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The hash of a jute-generated record of two strings (`Id`: scheme, id).
pub fn id_hash(scheme: &str, id: &str) -> i32 {
    let r = 17i32.wrapping_mul(37).wrapping_add(string_hash(scheme));
    r.wrapping_mul(37).wrapping_add(string_hash(id))
}

/// Orders items as a Java `HashSet` (or `ConcurrentHashMap` key set) would iterate them after
/// inserting them in the given order: by bucket of the spread hash in a table that starts at 16
/// and doubles past three quarters full, then by insertion within a bucket.
pub fn hash_set_order<T>(items: Vec<T>, hash: impl Fn(&T) -> i32) -> Vec<T> {
    let mut cap = 16usize;
    while items.len() * 4 > cap * 3 {
        cap *= 2;
    }
    let mut keyed: Vec<(usize, usize, T)> = items
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let h = hash(&t);
            let spread = (h ^ ((h as u32) >> 16) as i32) as u32 as usize;
            (spread & (cap - 1), i, t)
        })
        .collect();
    keyed.sort_by_key(|(b, i, _)| (*b, *i));
    keyed.into_iter().map(|(_, _, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_hash_matches_java() {
        assert_eq!(string_hash(""), 0);
        assert_eq!(string_hash("a"), 97);
        assert_eq!(string_hash("hello"), 99162322);
        assert_eq!(string_hash("digest"), -1331913276);
    }

    #[test]
    fn order_observed_from_zookeeper() {
        // zkCli `whoami` against ZooKeeper 3.8 after `addauth digest user:...` then
        // `addauth digest other:...` printed: digest other, ip, digest user.
        let ids = vec![
            ("ip", "127.0.0.1"),
            ("digest", "user:smGaoVKd/cQkjm7b88GyorAUz20="),
            ("digest", "other:8q+cqA9FicvypK1WV0YuCD5XdXU="),
        ];
        let got = hash_set_order(ids, |(s, i)| id_hash(s, i));
        assert_eq!(got[0].1, "other:8q+cqA9FicvypK1WV0YuCD5XdXU=");
        assert_eq!(got[1].0, "ip");
    }

    #[test]
    fn ephemeral_order_observed_from_zookeeper() {
        let eph = vec!["/a/b/e2", "/eph", "/eph-0000000004"];
        let got = hash_set_order(eph, |p| string_hash(p));
        assert_eq!(got, vec!["/eph", "/eph-0000000004", "/a/b/e2"]);
    }
}
