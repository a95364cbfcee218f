//! What `strata status` shows, as Argo CD shows an application: the followed ref and its
//! head, the last applied commit, whether the cluster runs what git says, the last error
//! and the health of the last run. Plain data, the same in the agent's answer and in the
//! CLI's JSON.

use serde::{Deserialize, Serialize};

use super::HookRun;
use crate::model::ChangeSetId;
use crate::state::StoreFailure;

/// Whether the live cluster runs what the commit it is compared with says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Sync {
    /// The live state equals the commit's desired state.
    Synced,
    /// It differs (see the reasons).
    OutOfSync,
    /// It cannot be said: no commit to compare with, or the head could not be read or is
    /// not valid (see the last error).
    Unknown,
}

impl Sync {
    /// The word `status` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Sync::Synced => "Synced",
            Sync::OutOfSync => "OutOfSync",
            Sync::Unknown => "Unknown",
        }
    }
}

/// A commit, as its change sets and `status` name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommitInfo {
    /// The full commit id.
    pub commit: String,
    /// Its author.
    pub author: String,
    /// The first line of its message.
    pub message: String,
}

/// The newest change set stamped with a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppliedCommit {
    /// The commit.
    #[serde(flatten)]
    pub commit: CommitInfo,
    /// The change set that applied it.
    pub change_set: ChangeSetId,
    /// When (wall ms).
    pub wall_ms: u64,
    /// The user who applied it (`follow` for a follower).
    pub user: String,
    /// The machine it was applied through.
    pub host: String,
    /// Whether that machine vouched for the commit (its config repo held it, or its own
    /// follower applied it), or recorded it as the user claimed it.
    #[serde(default)]
    pub origin_kind: crate::model::OriginKind,
}

/// The repo an agent follows (its `agent.kdl` `source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Followed {
    /// The path or URL.
    pub url: String,
    /// The branch.
    pub branch: String,
    /// `apply` or `report`.
    pub mode: String,
    /// Whether changes that did not come from the branch are reverted.
    pub self_heal: bool,
    /// How long such a change stands before it is reverted (ms).
    pub grace_ms: u64,
}

/// How this machine is doing: how the last run of its running config went, and whether
/// it can write its store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Every hook of the last run exited 0 (or there are none), and the store is written.
    Healthy,
    /// A hook of the last run failed, or the store cannot be written (a full or failing
    /// disk).
    Degraded,
    /// Nothing has run since the agent started.
    Unknown,
}

impl Health {
    /// The word `status` prints.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Degraded => "Degraded",
            Health::Unknown => "Unknown",
        }
    }
}

/// The last run of the running config and its hooks on the answering machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LastRun {
    /// Healthy, or degraded by a failing hook.
    pub health: Health,
    /// When it ended (wall ms), if it ran.
    pub at_ms: Option<u64>,
    /// Sections written and removed.
    pub sections: usize,
    /// The hooks that failed.
    pub failed: Vec<HookRun>,
}

/// What `git clone` from the answering member returns: its deployed branch, against the
/// last applied commit ([`crate::agent::mesh::git_fetch`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Served {
    /// The deployed branch (`main`).
    pub branch: String,
    /// The commit it points at; `None`: there is no such branch here yet.
    pub commit: Option<String>,
    /// Whether that is the last applied commit, and why not.
    pub state: ServedState,
}

/// How a member's deployed branch stands against the last applied commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ServedState {
    /// The branch is at the last applied commit.
    Current,
    /// No commit has been applied to the cluster: the branch holds what was pushed here.
    NothingApplied,
    /// The last applied commit's objects are not all here yet: they are being fetched
    /// from the members, and the branch moves once they are.
    Fetching {
        /// Fetches tried so far for this commit.
        tries: u32,
        /// Why the last one failed.
        last_error: Option<String>,
        /// When the next one is due (wall ms), if one waits.
        next_at_ms: Option<u64>,
    },
    /// The objects are here, but the branch is left where it is (it moves only forward).
    Held {
        /// Why.
        why: String,
    },
}

/// What one member says of the cluster's sync with git.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyncStatus {
    /// The answering machine.
    pub machine: String,
    /// The repo it follows, if it follows one.
    pub source: Option<Followed>,
    /// The head of the followed branch, as last read.
    pub head: Option<CommitInfo>,
    /// The newest change set stamped with a commit (from the change log).
    pub last_applied: Option<AppliedCommit>,
    /// Synced, OutOfSync or Unknown.
    pub sync: Sync,
    /// What the live state was compared with: `head` (the followed branch's head, planned
    /// against the live state) or `last-applied` (a member that follows nothing: the
    /// state the last applied commit left, from the change log).
    pub compared_with: String,
    /// Why it is out of sync: each entry that differs, and who changed it.
    pub reasons: Vec<String>,
    /// The drift-ignore rules in force (those of the commit compared with), by this
    /// machine's clock (absent from agents before them).
    #[serde(default)]
    pub drift_ignore: Vec<crate::drift_ignore::Shown>,
    /// The differences those rules cover, rule by rule: not in `reasons`, not drift.
    #[serde(default)]
    pub ignored: Vec<crate::drift_ignore::Ignored>,
    /// When self-heal reverts the difference (wall ms), if it will.
    pub heal_at_ms: Option<u64>,
    /// The last error of the follower (a head that is not valid, a fetch that failed, an
    /// apply that was refused), if the last attempt failed.
    pub last_error: Option<String>,
    /// The health of the last run on this machine.
    pub last_run: LastRun,
    /// Since when, and why, this machine cannot write its store (it is Degraded
    /// meanwhile); `None` while it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_failure: Option<StoreFailure>,
    /// What `git clone` from this machine returns (absent from agents before protocol
    /// 6).
    #[serde(default)]
    pub served: Option<Served>,
    /// The change sets on trial (commit confirmed) this machine reverts unless a
    /// confirmation reaches it by their deadline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trials: Vec<Trial>,
    /// The staged rollouts still moving or halted, each as one line (`change set
    /// 8f2c1d0e9b: wave 1 of 3 (canary: lab1) running; next: …`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<String>,
}

/// A change set on trial, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trial {
    /// The change set.
    pub change_set: crate::model::ChangeSetId,
    /// When this machine reverts it unless confirmed (ms since the Unix epoch, by its
    /// clock).
    pub reverts_at_ms: u64,
}
