//! Who asks and what they may change ([`Caller`], [`Authority`], the branch a follower
//! keeps the cluster at: [`Followed`]), and the one answer a refused request gets
//! ([`Refusal`]). Every write path of the cluster takes these; they take nothing of it.

use super::users::Role;
use crate::model::OriginKind;
use crate::state::{CommitError, StoreError};

/// A request the agent will not carry out; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The request itself is wrong.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
    /// The caller's role does not allow it.
    #[error("{0}")]
    Denied(String),
    /// The commit failed or was stale.
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Commit(CommitError::Store(e))
    }
}

pub fn invalid(message: impl Into<String>, help: Option<&str>) -> Refusal {
    Refusal::Invalid {
        message: message.into(),
        help: help.map(str::to_owned),
    }
}

/// Who asks.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The SSH user.
    pub user: String,
    /// What the caller may change.
    pub authority: Authority,
    /// The branch a follower in mode apply keeps the cluster at, when the caller is not
    /// that follower: git-owned writes are then refused (see [`super::guard`]).
    pub followed: Option<Followed>,
    /// An administrator's reason to write during a change freeze (`apply --break-glass`);
    /// recorded in the change set's message.
    pub break_glass: Option<String>,
    /// Whether the commit the caller applies is vouched for: set by the request handler
    /// (from the code path and the agent's config repo), never taken from a request.
    pub origin_kind: OriginKind,
}

impl Caller {
    /// User `user` with the authority of `role`: administrators may change everything,
    /// operators everything but users and membership.
    pub fn with_role(user: impl Into<String>, role: Role) -> Caller {
        Caller {
            user: user.into(),
            authority: if role.may_administer() {
                Authority::All
            } else {
                Authority::NoMembership
            },
            followed: None,
            break_glass: None,
            origin_kind: OriginKind::Claimed,
        }
    }
}

/// Who may change what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// Everything (administrators, and the agent itself).
    All,
    /// Everything but users, roles and membership (operators).
    NoMembership,
}

/// A branch that a follower in mode apply keeps the cluster at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// Who follows what, for messages ("this machine follows main of /srv/config.git in
    /// mode apply").
    pub by: String,
    /// The commit the follower applied last (full id), if the log knows it.
    pub commit: Option<String>,
}
