//! Client byte streams into the request decoder: the first frame as a ConnectRequest, every later
//! frame as RequestHeader + `Request::decode`, plus framing with a small limit. The body lives in
//! `paddock_proto::fuzzing` so that `cargo test` replays the corpus through the same code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paddock_proto::fuzzing::decode_stream(data);
});
