//! Errors of the recipes.

use paddock_client::{Error as ClientError, ErrorCode};
use thiserror::Error;

/// Why a recipe operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecipeError {
    /// The client failed in a way the recipe does not retry (an ACL refusal, a bad path, ...).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The session expired, was closed, or has been unreachable for a whole session timeout
    /// (presumed lost). Whatever the recipe held is gone or must be treated as gone.
    #[error("session lost")]
    SessionLost,
    /// The wait ended before the recipe got what it waited for.
    #[error("timed out")]
    Timeout,
    /// The operation needs something this handle does not hold (releasing an unheld lock, ...).
    #[error("not held: {0}")]
    NotHeld(&'static str),
    /// The arguments cannot work (a zero-lease semaphore, a path without a parent, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A node the recipe owns holds something it cannot read back.
    #[error("unexpected content in {path}: {why}")]
    Corrupt {
        /// The node.
        path: String,
        /// What is wrong with it.
        why: String,
    },
}

impl RecipeError {
    /// Whether this is the client's CONNECTIONLOSS (the outcome of the request is unknown).
    pub fn is_connection_loss(&self) -> bool {
        matches!(self, RecipeError::Client(e) if e.code() == Some(ErrorCode::ConnectionLoss))
    }
}

/// Maps a client error to a recipe error, turning the terminal session errors into
/// [`RecipeError::SessionLost`].
pub(crate) fn from_client(e: ClientError) -> RecipeError {
    match e {
        ClientError::Closed => RecipeError::SessionLost,
        ClientError::Code(ErrorCode::SessionExpired) | ClientError::Code(ErrorCode::AuthFailed) => {
            RecipeError::SessionLost
        }
        other => RecipeError::Client(other),
    }
}

/// Shorthand for recipe results.
pub type Result<T, E = RecipeError> = std::result::Result<T, E>;
