//! Framing: every message is a 4-byte big-endian length followed by that many bytes. Before the
//! handshake the first four bytes may instead be a four-letter word.

use bytes::{Buf, BytesMut};
use thiserror::Error;

/// The default `jute.maxbuffer`: the largest frame either side accepts.
pub const DEFAULT_MAX_FRAME: usize = 0xFFFFF;

/// Why a frame was refused; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("frame length {len} is negative or above the limit of {max} bytes")]
    BadLength { len: i64, max: usize },
}

/// Peeks at the length prefix. `Ok(None)` means more bytes are needed.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max {
        return Err(FrameError::BadLength {
            len: len as i64,
            max,
        });
    }
    Ok(Some(len as usize))
}

/// Splits one complete frame's payload off the front of `buf`, if it holds one.
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, FrameError> {
    match frame_len(buf, max)? {
        Some(len) if buf.len() >= 4 + len => {
            buf.advance(4);
            Ok(Some(buf.split_to(len)))
        }
        _ => Ok(None),
    }
}

/// The four-letter words recognised on the client port before a handshake: ZooKeeper's, and
/// `ydld` (yield leadership) and `rqld` (request leadership), as ClickHouse Keeper names them.
pub const FOUR_LETTER_WORDS: [&str; 20] = [
    "ruok", "stat", "srvr", "conf", "cons", "crst", "dump", "envi", "mntr", "srst", "wchs", "wchc",
    "wchp", "dirs", "isro", "gtmk", "stmk", "hash", "ydld", "rqld",
];

/// The four-letter word these first four bytes spell, if any.
pub fn four_letter_word(first: &[u8]) -> Option<&'static str> {
    let w = first.get(..4)?;
    FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|c| c.as_bytes() == w)
}
