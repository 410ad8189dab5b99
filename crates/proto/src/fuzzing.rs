//! The decode path driven by the fuzzer (`fuzz/`) and by the corpus replay test, kept here so CI
//! and the fuzzer run identical code.
//!
//! The input is what a client could write on one connection: length-prefixed frames, the first a
//! `ConnectRequest`, each later one a `RequestHeader` followed by that opcode's body. Decoding
//! errors are expected and counted; a panic means a bug. Besides "never panics", every value that
//! decodes is re-encoded and must decode to itself, and framing must give the same frames whether
//! the bytes arrive at once or in small pieces.

use crate::codes::op;
use crate::frame::{four_letter_word, frame_len, take_frame, DEFAULT_MAX_FRAME};
use crate::jute::{Reader, Record};
use crate::records::{ConnectRequest, RequestHeader};
use crate::request::{decode_multi_response, encode_multi_response, Request};
use bytes::BytesMut;

/// The frame limit of the second framing pass, small so that oversized lengths are common.
pub const SMALL_MAX_FRAME: usize = 32;

/// What one [`decode_stream`] run saw; tests use it to check that valid seeds stay valid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Complete frames taken with the default `jute.maxbuffer`.
    pub frames: usize,
    /// The first frame decoded as a ConnectRequest.
    pub connect_ok: bool,
    /// Later frames whose header and body decoded.
    pub requests_ok: usize,
    /// Later frames whose header or body did not decode.
    pub requests_err: usize,
    /// Framing stopped on a negative or oversized length.
    pub frame_error: bool,
    /// Bytes left over after the last complete frame (a partial frame).
    pub leftover: usize,
}

/// Decodes `data` as a client byte stream; panics only if the codec breaks an invariant.
pub fn decode_stream(data: &[u8]) -> Summary {
    if let Some(w) = four_letter_word(data) {
        assert_eq!(w.as_bytes(), &data[..4]);
    }

    let mut s = Summary::default();
    let mut buf = BytesMut::from(data);
    loop {
        match take_frame(&mut buf, DEFAULT_MAX_FRAME) {
            Ok(Some(frame)) => {
                if s.frames == 0 {
                    s.connect_ok = decode_connect(&frame);
                } else if decode_request_frame(&frame) {
                    s.requests_ok += 1;
                } else {
                    s.requests_err += 1;
                }
                s.frames += 1;
            }
            Ok(None) => break,
            Err(_) => {
                s.frame_error = true;
                break;
            }
        }
    }
    s.leftover = buf.len();

    check_framing(data, SMALL_MAX_FRAME);
    s
}

fn decode_connect(frame: &[u8]) -> bool {
    let mut r = Reader::new(frame);
    let Ok(c) = ConnectRequest::decode(&mut r) else {
        return false;
    };
    let bytes = c.to_bytes();
    let mut r2 = Reader::new(&bytes);
    assert_eq!(
        ConnectRequest::decode(&mut r2).as_ref(),
        Ok(&c),
        "ConnectRequest re-decode"
    );
    assert_eq!(r2.remaining(), 0, "ConnectRequest re-decode left bytes");
    true
}

fn decode_request_frame(frame: &[u8]) -> bool {
    let mut r = Reader::new(frame);
    let Ok(h) = RequestHeader::decode(&mut r) else {
        return false;
    };
    let body = r.rest();

    // The client-side multi reply decoder sees the same kind of bytes; exercise it too.
    if h.op == op::MULTI || h.op == op::MULTI_READ {
        let mut mr = Reader::new(body);
        if let Ok(results) = decode_multi_response(&mut mr) {
            let mut bytes = Vec::new();
            encode_multi_response(&results, &mut bytes);
            let mut r2 = Reader::new(&bytes);
            assert_eq!(
                decode_multi_response(&mut r2).as_ref(),
                Ok(&results),
                "multi reply"
            );
            assert_eq!(r2.remaining(), 0, "multi reply re-decode left bytes");
        }
    }

    let Ok(req) = Request::decode(h.op, body) else {
        return false;
    };
    assert_eq!(req.opcode(), h.op, "decoded request reports another opcode");
    let mut bytes = Vec::new();
    req.encode_body(&mut bytes);
    assert_eq!(
        Request::decode(h.op, &bytes).as_ref(),
        Ok(&req),
        "request re-decode"
    );
    true
}

/// Frames taken from the whole buffer must equal those taken while the bytes trickle in.
fn check_framing(data: &[u8], max: usize) {
    let mut whole = BytesMut::from(data);
    let (frames, err) = take_all(&mut whole, max);

    let mut piecewise = Vec::new();
    let mut perr = false;
    let mut buf = BytesMut::new();
    let mut i = 0;
    while i < data.len() && !perr {
        let n = (1 + data[i] as usize % 7).min(data.len() - i);
        buf.extend_from_slice(&data[i..i + n]);
        i += n;
        let (f, e) = take_all(&mut buf, max);
        piecewise.extend(f);
        perr = e;
    }
    assert_eq!(
        (&frames, err),
        (&piecewise, perr),
        "framing depends on how bytes arrive"
    );
}

fn take_all(buf: &mut BytesMut, max: usize) -> (Vec<BytesMut>, bool) {
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        let peek = frame_len(buf, max);
        match take_frame(buf, max) {
            Ok(Some(f)) => {
                assert!(f.len() <= max, "frame above the limit");
                assert_eq!(peek, Ok(Some(f.len())));
                assert_eq!(
                    before,
                    buf.len() + 4 + f.len(),
                    "frame took the wrong byte count"
                );
                out.push(f);
            }
            Ok(None) => {
                assert_eq!(before, buf.len(), "an incomplete frame consumed bytes");
                return (out, false);
            }
            Err(e) => {
                assert_eq!(peek, Err(e));
                assert_eq!(before, buf.len(), "a refused frame consumed bytes");
                return (out, true);
            }
        }
    }
}
