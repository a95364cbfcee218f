//! The JSON documents of the cluster commands: the administration commits, join,
//! prepjoin, disconnect/reconnect/remove and repair.

use schemars::JsonSchema;
use serde::Serialize;

/// What a cluster administration command (`cluster passwd`, `setname`, `addgroup`,
/// `setgroup`, `renamegroup`, `renamemachine`, `deletegroup`, `prepjoin add|delete`, `disconnect`,
/// `reconnect`, `remove`) prints: the change
/// set it committed, or `null` when there was nothing to change, and its own fields `T`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CommitJson<T> {
    /// The machine whose agent committed it.
    pub machine: String,
    /// The change set (`null`: nothing to change).
    pub change_set: Option<Box<crate::state::ChangeSetSummary>>,
    /// What it did on that machine (absent when nothing changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<crate::protocol::RunReport>,
    /// The command's own fields.
    #[serde(flatten)]
    pub what: T,
}

/// `cluster passwd`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UserJson {
    /// The user whose passphrase was set.
    pub user: String,
}

/// `cluster setname`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SetNameJson {
    /// The cluster's new name.
    pub cluster: String,
}

/// `cluster addgroup`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GroupJson {
    /// The group added.
    pub group: String,
}

/// `cluster setgroup`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SetGroupJson {
    /// The machine moved.
    pub machine_moved: String,
    /// Its group now.
    pub group: String,
}

/// `cluster renamegroup`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RenameGroupJson {
    /// The old name.
    pub from: String,
    /// The new name.
    pub to: String,
}

/// `strata rollout`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RolloutJson {
    /// The staged change set as the command named it (`null`: the only one open).
    pub rollout: Option<String>,
    /// `halted`, `promoted` or `undone`.
    pub action: String,
}

/// `strata confirm`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConfirmJson {
    /// The trial as the command named it (`null`: the only one waiting; the change set
    /// says which it confirmed, in its `meta.confirm`).
    pub trial: Option<String>,
}

/// `cluster renamemachine`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RenameMachineJson {
    /// The old name.
    pub from: String,
    /// The new name.
    pub to: String,
    /// The address it was given (`null`: it kept its own).
    pub address: Option<String>,
}

/// `cluster deletegroup`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeleteGroupJson {
    /// The group deleted.
    pub group: String,
    /// Where its machines went (`null`: it had none).
    pub move_to: Option<String>,
}

/// `cluster prepjoin add`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrepjoinAddJson {
    /// The machine registered to join.
    pub host: String,
    /// Its serial number.
    pub serial: String,
    /// Its host key, an OpenSSH public-key line.
    pub key: String,
}

/// `cluster prepjoin delete`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrepjoinHostJson {
    /// The machine no longer registered.
    pub host: String,
}

/// `cluster prepjoin list --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PrepjoinListJson {
    /// The machine that answered.
    pub machine: String,
    /// The machines registered to join.
    pub entries: Vec<crate::protocol::status::PendingEntry>,
}

/// `strata cluster join --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct JoinJson {
    /// The cluster joined.
    pub joined: String,
    /// The machine that joined.
    pub machine: String,
    /// The member it joined through.
    pub member: String,
    /// Its group.
    pub group: String,
    /// Its standalone sections the cluster's replaced.
    pub replaced: Vec<String>,
    /// Anything the member said (a repo's group won, say).
    pub notes: Vec<String>,
}

/// `cluster disconnect|reconnect|remove`'s fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MembershipJson {
    /// The member whose membership changed.
    pub member: String,
    /// What happened to it.
    pub action: MembershipAction,
}

/// What `cluster disconnect|reconnect|remove` does to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MembershipAction {
    /// It stops taking part in the mesh, and keeps its config.
    Disconnected,
    /// It takes part again.
    Reconnected,
    /// It leaves the cluster.
    Removed,
}

impl MembershipAction {
    /// The word the human output uses.
    pub fn word(self) -> &'static str {
        match self {
            MembershipAction::Disconnected => "disconnected",
            MembershipAction::Reconnected => "reconnected",
            MembershipAction::Removed => "removed",
        }
    }
}

/// `strata cluster repair --format json`: the store rebuilt from a member.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RepairJson {
    /// The machine whose store was rebuilt.
    pub repaired: String,
    /// Its cluster.
    pub cluster: String,
    /// The member it was rebuilt from.
    pub member: String,
    /// The change sets it now holds.
    pub change_sets: usize,
    /// The entries it now holds.
    pub entries: usize,
    /// Whether its digests match the member's (always `true`: a mismatch is an error).
    pub digests_match: bool,
    /// Where the old store was kept (`null`: there was none).
    pub kept: Option<String>,
}
