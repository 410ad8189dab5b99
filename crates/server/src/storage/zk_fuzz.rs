//! The fuzz target's body for ZooKeeper's file readers (`fuzz/fuzz_targets/zk_files.rs`), here
//! so that `cargo test` runs the committed corpus and mutated files through the same code.
//! Whatever the bytes, reading them as a snapshot (any compression), loading that into a tree,
//! reading them as a log and replaying it over the tree ends in a value or an error, never a
//! panic or an allocation the input's size does not justify.

use super::{zk_import, zk_log, zk_snapshot};

/// Reads `data` every way `paddock import-zk` and `paddock restore` would.
pub fn read_files(data: &[u8]) {
    let tree = zk_snapshot::from_bytes(data.to_vec())
        .ok()
        .and_then(|s| zk_import::load_tree(&s).ok());
    if let Ok(log) = zk_log::from_bytes(data) {
        let mut tree = tree.unwrap_or_default();
        for t in &log.txns {
            let _ = tree.apply(&t.txn);
        }
        let _ = tree.zk_digest();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_proto::Acl;
    use paddock_tree::{DataTree, Txn, TxnOp};
    use proptest::prelude::*;
    use std::io::Write;

    /// A small tree's snapshot: plain, gzip and snappy (as snappy-java frames it).
    fn snapshots() -> Vec<Vec<u8>> {
        let mut tree = DataTree::new();
        let ops = [
            TxnOp::CreateSession {
                timeout: 4000,
                password: None,
            },
            TxnOp::Create {
                path: "/a".into(),
                data: Some(b"alpha".to_vec()),
                acl: Acl::open_unsafe(),
                owner: 0,
                parent_cversion: 1,
            },
            TxnOp::Create {
                path: "/a/b".into(),
                data: None,
                acl: Acl::read_unsafe(),
                owner: 9,
                parent_cversion: 1,
            },
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let _ = tree.apply(&Txn {
                session_id: 9,
                cxid: i as i32,
                zxid: i as i64 + 1,
                time: 1000,
                op,
            });
        }
        let plain = zk_snapshot::encode(&tree, Vec::new()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut sn = vec![
            0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
        ];
        let block = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        sn.extend_from_slice(&(block.len() as i32).to_be_bytes());
        sn.extend_from_slice(&block);
        vec![plain, gz, sn]
    }

    /// A log of one create record (ZooKeeper's layout), then the zero tail.
    fn log() -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&9i64.to_be_bytes());
        e.extend_from_slice(&1i32.to_be_bytes());
        e.extend_from_slice(&4i64.to_be_bytes());
        e.extend_from_slice(&1000i64.to_be_bytes());
        e.extend_from_slice(&1i32.to_be_bytes()); // create
        for s in ["/c", "data"] {
            e.extend_from_slice(&(s.len() as i32).to_be_bytes());
            e.extend_from_slice(s.as_bytes());
        }
        e.extend_from_slice(&1i32.to_be_bytes()); // one ACL
        e.extend_from_slice(&31i32.to_be_bytes());
        for s in ["world", "anyone"] {
            e.extend_from_slice(&(s.len() as i32).to_be_bytes());
            e.extend_from_slice(s.as_bytes());
        }
        e.push(0); // not ephemeral
        e.extend_from_slice(&2i32.to_be_bytes()); // parent cversion
        let mut b = 0x5A4B_4C47i32.to_be_bytes().to_vec();
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&i64::from(adler2::adler32_slice(&e)).to_be_bytes());
        b.extend_from_slice(&(e.len() as i32).to_be_bytes());
        b.extend_from_slice(&e);
        b.push(b'B');
        b.extend_from_slice(&[0; 32]);
        b
    }

    fn seeds() -> Vec<Vec<u8>> {
        let mut v = snapshots();
        v.push(log());
        v
    }

    fn corpus_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/zk_files")
    }

    /// The seeds read as what they are; `PADDOCK_WRITE_CORPUS=1` writes them into the corpus.
    #[test]
    fn the_seeds_read_whole() {
        let s = seeds();
        if std::env::var("PADDOCK_WRITE_CORPUS").is_ok_and(|v| v == "1") {
            let names = [
                "snapshot-plain",
                "snapshot-gz",
                "snapshot-snappy",
                "log-one-create",
            ];
            std::fs::create_dir_all(corpus_dir()).unwrap();
            for (name, bytes) in names.iter().zip(&s) {
                std::fs::write(corpus_dir().join(name), bytes).unwrap();
            }
        }
        for snap in &s[..3] {
            let read = zk_snapshot::from_bytes(snap.clone()).unwrap();
            assert_eq!(read.zxid, 3);
            // The root, /a, /a/b and /zookeeper with its quota and config nodes.
            assert_eq!(read.nodes.len(), 6);
            assert!(zk_import::load_tree(&read).is_ok());
        }
        let l = zk_log::from_bytes(&s[3]).unwrap();
        assert_eq!(l.txns.len(), 1);
        assert!(!l.torn);
    }

    /// The committed corpus (`fuzz/corpus/zk_files/`, crash reproducers included).
    #[test]
    fn the_corpus_replays() {
        let dir = corpus_dir();
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            read_files(&std::fs::read(e.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n >= 4, "{} holds {n} files", dir.display());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Seeds with bytes flipped, cut, or spliced with random bytes.
        #[test]
        fn damaged_files_never_panic(
            seed in 0usize..4,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            tail in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut b = seeds().swap_remove(seed);
            for (at, x) in flips {
                let i = at.index(b.len());
                b[i] ^= x;
            }
            if let Some(c) = cut {
                b.truncate(c.index(b.len() + 1));
            }
            b.extend_from_slice(&tail);
            read_files(&b);
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            read_files(&b);
        }
    }
}
