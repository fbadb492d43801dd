//! The one error type of the core.
//!
//! Messages name the reason and the claim or setting at fault, never a token,
//! cookie, key or email: they reach logs and HTTP bodies.

use std::fmt;

/// Everything that can go wrong in the core, split by who is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The credential is malformed, forged, for another project or of the
    /// wrong kind. The string is a short reason safe to show to the client.
    InvalidToken(String),
    /// The token was valid but its `exp` has passed (beyond the leeway).
    Expired,
    /// Descope refused an access key (or it is remembered as refused).
    AccessKeyRefused,
    /// Descope refused a refresh token (revoked, rotated away, expired).
    RefreshRefused(String),
    /// Descope could not be reached, timed out or answered 5xx.
    Unavailable {
        /// What failed, e.g. "key set fetch timed out".
        reason: String,
        /// Seconds the client should wait before retrying.
        retry_after: u64,
    },
    /// Descope answered 429.
    RateLimited {
        /// Seconds from Descope's `Retry-After` header.
        retry_after: u64,
    },
    /// A setting is invalid; the string names the setting and what is allowed.
    Config(String),
    /// Answering needs a call to Descope, and the caller asked not to block.
    WouldBlock,
    /// A route table entry (method, pattern or level) or the static prefix is
    /// malformed; the string names the entry and the fault.
    RouteTable(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidToken(reason) => write!(f, "invalid token: {reason}"),
            Self::Expired => f.write_str("token expired (exp)"),
            Self::AccessKeyRefused => f.write_str("access key refused by Descope"),
            Self::RefreshRefused(reason) => write!(f, "refresh token refused: {reason}"),
            Self::Unavailable { reason, .. } => write!(f, "Descope unavailable: {reason}"),
            Self::RateLimited { retry_after } => {
                write!(f, "Descope rate limit reached; retry after {retry_after}s")
            }
            Self::Config(message) => f.write_str(message),
            Self::WouldBlock => f.write_str("a call to Descope is needed"),
            Self::RouteTable(message) => write!(f, "bad route table: {message}"),
        }
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidToken`] with a fixed reason.
    pub(crate) fn invalid(reason: &str) -> Self {
        Self::InvalidToken(reason.to_owned())
    }

    /// Shorthand for [`Error::Unavailable`].
    pub(crate) fn unavailable(reason: impl Into<String>, retry_after: u64) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            retry_after,
        }
    }

    /// Seconds a client should wait before retrying, for the errors that have one.
    #[must_use]
    pub const fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Unavailable { retry_after, .. } | Self::RateLimited { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of the core.
pub type Result<T> = std::result::Result<T, Error>;
