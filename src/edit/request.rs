//! What an edit asks for, as the command line writes it: the section, where it comes
//! from (a mode or its factory default) and where it goes (a mode, or every group).

use super::EditError;
use crate::model::Mode;

/// Where a copy or move goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One mode; its own version of the section, if any, is replaced.
    Mode(Mode),
    /// Every declared group (the seed's "copy to all groups"). A source group is one of
    /// them: it keeps the section, even on a move. A group that defines its own is
    /// skipped, or replaced when `replace_existing`.
    AllGroups {
        /// Replace the section of groups that define their own (else they keep it).
        replace_existing: bool,
    },
}

impl std::str::FromStr for Target {
    type Err = EditError;

    /// `all-groups`, or a mode as [`parse_mode`] reads it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all-groups" {
            return Ok(Target::AllGroups {
                replace_existing: false,
            });
        }
        parse_mode(s)
            .map(Target::Mode)
            .map_err(|_| EditError::BadMode {
                text: s.to_owned(),
                help: "write `cluster`, `group:NAME`, `machine:NAME` or `all-groups`".into(),
            })
    }
}

/// Where a copy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A mode that defines the section.
    Mode(Mode),
    /// The section's factory default, as its schema gives it (a repo's own schemas
    /// included): the seed's "start with default settings" when an override begins.
    Factory,
}

impl std::str::FromStr for CopySource {
    type Err = EditError;

    /// `factory`, or a mode as [`parse_mode`] reads it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "factory" {
            return Ok(CopySource::Factory);
        }
        parse_mode(s)
            .map(CopySource::Mode)
            .map_err(|_| EditError::BadMode {
                text: s.to_owned(),
                help: "write `cluster`, `group:NAME`, `machine:NAME`, or `factory` for the section's factory default".into(),
            })
    }
}

impl std::fmt::Display for CopySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopySource::Mode(m) => m.fmt(f),
            CopySource::Factory => f.write_str("the factory default"),
        }
    }
}

/// Reads a mode written on the command line: `cluster`, `group:NAME` or `machine:NAME`.
pub fn parse_mode(text: &str) -> Result<Mode, EditError> {
    text.parse().map_err(|_| EditError::BadMode {
        text: text.to_owned(),
        help: "write `cluster`, `group:NAME` or `machine:NAME`".into(),
    })
}

/// An edit to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Copy `section` from a mode (or its factory default) to another, keeping it at the
    /// source; the target's own version, if any, is replaced.
    Copy {
        /// The section.
        section: String,
        /// The mode that defines it, or the factory default.
        from: CopySource,
        /// Where it goes.
        to: Target,
    },
    /// Like `Copy`, then delete it at the source, which then inherits.
    Move {
        /// The section.
        section: String,
        /// The mode that defines it.
        from: Mode,
        /// Where it goes.
        to: Target,
    },
    /// Delete `section` at a mode, which then inherits it.
    Delete {
        /// The section.
        section: String,
        /// The mode that defines it.
        at: Mode,
    },
}

impl Request {
    /// The section it edits.
    pub(super) fn section(&self) -> &str {
        match self {
            Request::Copy { section, .. }
            | Request::Move { section, .. }
            | Request::Delete { section, .. } => section,
        }
    }
}
