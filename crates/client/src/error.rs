//! Errors returned by client operations.

use paddock_proto::{DecodeError, ErrorCode, OpResult};
use thiserror::Error;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The server (or the client, for CONNECTIONLOSS and SESSIONEXPIRED) answered with a
    /// KeeperException code; every assigned code has its own `ErrorCode` variant.
    #[error("{0}")]
    Code(ErrorCode),
    /// A multi failed: the first failing code, and every sub-result (rolled back ones as
    /// `OpResult::Error(0)` or `-2`).
    #[error("multi failed: {code}")]
    Multi {
        /// The code of the first failing sub-op.
        code: ErrorCode,
        /// One result per sub-op.
        results: Vec<OpResult>,
    },
    /// The server answered with a code no ZooKeeper version assigns.
    #[error("unknown error code {0}")]
    UnknownCode(i32),
    /// The reply could not be decoded; the connection is dropped.
    #[error("malformed reply: {0}")]
    Decode(#[from] DecodeError),
    /// A path the server would reject anyway, caught before sending.
    #[error("invalid path {0:?}: {1}")]
    BadPath(String, String),
    /// The connect string names no host.
    #[error("no host in connect string {0:?}")]
    NoHost(String),
    /// The client was closed by the application.
    #[error("client closed")]
    Closed,
    /// Waiting for a connection timed out.
    #[error("timed out waiting for a connection")]
    Timeout,
}

impl Error {
    /// The KeeperException code behind this error, if there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Code(c) | Error::Multi { code: c, .. } => Some(*c),
            Error::Closed => Some(ErrorCode::SessionExpired),
            _ => None,
        }
    }

    /// Builds the error for a non-zero reply code.
    pub fn from_code(c: i32) -> Error {
        match ErrorCode::from_code(c) {
            Some(code) => Error::Code(code),
            None => Error::UnknownCode(c),
        }
    }
}

impl From<ErrorCode> for Error {
    fn from(c: ErrorCode) -> Self {
        Error::Code(c)
    }
}

/// Shorthand for client results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
