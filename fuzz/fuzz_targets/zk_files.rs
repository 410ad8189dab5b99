//! Bytes as Apache ZooKeeper's files: a snapshot (plain, gz or snappy), loaded into a tree, and
//! a transaction log, replayed over it, as `paddock import-zk` and `paddock restore` read them.
//! The body lives in `paddock_server::storage::zk_fuzz` so that `cargo test` replays the corpus
//! through the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paddock_server::storage::zk_fuzz::read_files(data);
});
