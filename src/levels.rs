//! MLflow permission levels, and the mapping from Descope roles and
//! permissions to them.

use std::fmt;

/// A user's MLflow permission level, ordered from none to full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Signed in, but allowed nothing.
    NoPermissions,
    /// Read experiments, runs, models, traces and artifacts.
    Read,
    /// Create and change them.
    Edit,
    /// Delete whole objects and administer the server.
    Manage,
}

impl Level {
    /// The name used in configuration, logs and responses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoPermissions => "NO_PERMISSIONS",
            Self::Read => "READ",
            Self::Edit => "EDIT",
            Self::Manage => "MANAGE",
        }
    }

    /// Parses a level name as written in configuration (exact, upper case).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "NO_PERMISSIONS" => Some(Self::NoPermissions),
            "READ" => Some(Self::Read),
            "EDIT" => Some(Self::Edit),
            "MANAGE" => Some(Self::Manage),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_from_none_to_manage() {
        assert!(Level::NoPermissions < Level::Read);
        assert!(Level::Read < Level::Edit);
        assert!(Level::Edit < Level::Manage);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for level in [
            Level::NoPermissions,
            Level::Read,
            Level::Edit,
            Level::Manage,
        ] {
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
        assert_eq!(Level::parse("read"), None);
        assert_eq!(Level::parse("ADMIN"), None);
    }
}
