//! Typed messages between the CLI and an agent. Each request gets exactly one response;
//! the client closes only after reading it, so no message relies on EOF to arrive (russh
//! can drop the last data message before EOF).

use serde::{Deserialize, Serialize};

use super::consistency::{CheckReport, MachinePropagation};
use super::run::RunReport;
use super::status::{ClusterListing, ConnStatus, PendingEntry};
use crate::model::{GroupName, Key, MachineName, Node, Version};
use crate::plan::{Digests, Origin, Plan};
use crate::state::{
    Base, ChangeSet, ChangeSetId, ChangeSetSummary, Conflict, Live, LostWrite, Writes,
};

/// A passphrase on the wire: sent inside the SSH channel, never printed (its `Debug`
/// says only that it is there), never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A rollback as it was shown, which [`Request::Rollback`] must still be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    /// Key → value written (`None`: tombstone).
    pub writes: Writes,
    /// The live version of each key written, as seen when it was shown.
    pub base: Base,
}

/// What a joining machine tells the member it joins through.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The joiner's machine name.
    pub machine: MachineName,
    /// Its SSH host key (OpenSSH public-key line): the key it logs in with as a peer.
    pub host_key: String,
    /// Its serial number.
    pub serial: String,
    /// Where its agent takes peer connections (`host:port`).
    pub peer: String,
    /// The group to join; `Main_Group` when absent (a repo's declaration wins).
    pub group: Option<GroupName>,
    /// Its machine-only standalone sections (interfaces, hostname, …), which stay its own.
    pub machine_sections: Vec<Node>,
    /// The Strata version it runs: the member refuses another release
    /// ([`super::version`]). `None` from a client that does not say (refused too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strata_version: Option<String>,
    /// Its appliance's version, if its settings give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance_version: Option<String>,
}

/// The protocol revision; agents refuse clients of another revision (and clients
/// agents of another). Bumped when the encoding of entry values changes
/// ([`crate::model::ENCODING`]) and when requests are added: 2 is encoding 2; 3 adds
/// [`Request::Digests`] and [`Request::Entries`], which `plan` needs; 4 makes the
/// anti-entropy exchange pull what it lacks from one peer
/// ([`crate::replica::SyncMsg::Pull`]) where 3 pushed it from every peer, packs large
/// frames ([`super::pack`]), and has a parked link say so
/// ([`super::wire::PeerMsg::Parked`]); 5 adds [`Request::RollbackPlan`] and the rollback
/// as shown ([`Shown`]), so that `rollback` shows what it will change before it asks;
/// 6 records each member's Strata and appliance
/// versions in its membership (an agent of 5 would drop them, and its digests of
/// memberships would differ) and has a joiner say its own ([`JoinRequest`]). Strata
/// versions are compared too, on join, links and reconnect ([`super::version`]);
/// 7 adds the config repo's objects between members ([`super::wire::Query::GitPack`])
/// and what a member serves to `status` ([`super::sync_status::Served`]); 8 adds
/// [`Request::Repair`], which rebuilds a member's lost store from a peer; 9 adds the
/// cluster's identities (entries an agent of 8 cannot read) and the `Secret…` requests;
/// 10 adds [`Request::RenameMachine`] (an agent of 9 would take the rename of itself for
/// its removal, and leave the cluster); 11 adds commit confirmed: trials, confirmations
/// and reverts ([`crate::model::Confirm`]; an agent of 10 would rank a revert as an
/// ordinary write, and undo writes made after the trial); 12 adds the overlay above the
/// full mesh: link-state announcements ([`super::wire::PeerMsg::LinkState`]), which an
/// agent of 11 could not read; 13 merges a member's facts on their own clock
/// ([`crate::state::facts`]: an agent of 12 would keep the later write's whole entry, and
/// the two would hold different memberships); 14 names a mesh message by a key around
/// its fields instead of a field among them ([`super::wire::PeerMsg`]: read without
/// buffering the message first).
pub const PROTOCOL: u32 = 14;

/// The SSH subsystem the protocol runs on.
pub const SUBSYSTEM: &str = "strata";

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// First message: the client's protocol revision and Strata version.
    Hello {
        /// [`PROTOCOL`] of the client.
        protocol: u32,
        /// The client's Strata version.
        version: String,
    },
    /// Every live entry, tombstones included.
    Live,
    /// The digest of every live entry, by key (for plan: it then fetches only the
    /// entries whose digests differ from the desired ones).
    Digests,
    /// These live entries, tombstones included (keys the agent does not hold are left
    /// out of the answer).
    Entries {
        /// Which, in any order.
        keys: Vec<Key>,
    },
    /// Commit a plan's writes as one change set, if its base is still current.
    Apply {
        /// Key → new value (`None`: tombstone).
        writes: Writes,
        /// The versions the plan saw.
        base: Base,
        /// The commit (or working tree) the plan came from.
        origin: Origin,
        /// Apply even while a follower in mode apply keeps the cluster at a branch
        /// (`apply --override-follower`); its self-heal then reverts the change.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        override_follower: bool,
        /// An administrator's reason to apply during a change freeze
        /// (`apply --break-glass REASON`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        break_glass: Option<String>,
        /// Apply on trial (`apply --confirm-within`): every machine reverts the change
        /// set unless `strata confirm` reaches it within this many milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm_within_ms: Option<u64>,
    },
    /// Confirms a change set applied on trial (`strata confirm [ID]`): the one `id` (a
    /// prefix of its id) names, or the only one waiting.
    Confirm {
        /// The trial's change set id, or a prefix of it.
        id: Option<String>,
    },
    /// Steers a staged rollout (`strata rollout halt|promote|undo [ID]`): the one `id`
    /// names, or the only one still moving or halted.
    Rollout {
        /// The staged change set's id, or a prefix of it.
        id: Option<String>,
        /// What to do.
        action: RolloutAction,
    },
    /// The applied change sets.
    Log,
    /// `strata status`: the followed ref, its head, the last applied commit, sync and
    /// health.
    Status,
    /// The conflict log: writes that lost under last-writer-wins.
    Conflicts,
    /// `check`: whether every member holds the same entries, and what differs.
    Check,
    /// `check --resolve KEY --use HOST`: commit HOST's version of KEY as a new change
    /// set, so that it wins everywhere.
    CheckResolve {
        /// The entry.
        key: Key,
        /// The member whose version wins.
        host: MachineName,
    },
    /// From the config repo's `pre-receive` hook (logged in with the state dir's key): a
    /// pushed commit's plan, applied as one change set with the authority of the user who
    /// pushed (administrators only may ask: they could apply it themselves).
    ApplyPush {
        /// Who pushed.
        user: String,
        /// Their role (`operator`, `administrator`).
        role: String,
        /// Key → new value (`None`: tombstone).
        writes: Writes,
        /// The versions the plan saw.
        base: Base,
        /// The pushed commit.
        origin: Origin,
        /// On trial (`git push -o confirm-within=…`), as [`Request::Apply`]'s.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirm_within_ms: Option<u64>,
    },
    /// Where a change set stands on every member; waits up to `wait_ms` for the
    /// reachable ones to apply it.
    Propagation {
        /// The change set's version.
        version: Version,
        /// How long to wait, in milliseconds (0: ask once).
        wait_ms: u64,
    },
    /// What [`Request::Rollback`] to `to` would do now, as a plan (nothing is written):
    /// what `strata rollback` shows before it asks.
    RollbackPlan {
        /// The change set whose state to restore: its id, or a unique prefix of it.
        to: String,
    },
    /// Apply the state as of change set `to` as a new change set.
    Rollback {
        /// The change set whose state to restore: its id, or a unique prefix of it.
        to: String,
        /// The rollback as [`Request::RollbackPlan`] showed it: when given, the rollback
        /// is refused as stale unless it still writes exactly these values against
        /// exactly the versions in `base` (something changed since it was shown).
        #[serde(default)]
        shown: Option<Shown>,
    },
    /// Turn the standalone agent into a one-machine cluster.
    ClusterCreate {
        /// The cluster's name.
        name: String,
    },
    /// Set a user's passphrase in the cluster's `users` section, stored as an argon2id
    /// hash: the administrator `admin` (created if missing), or another user the section
    /// declares.
    ClusterPasswd {
        /// The new passphrase.
        passphrase: Secret,
        /// Whose (`None`: `admin`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// To the joiner's own agent: join the cluster of the member at `address`.
    ClusterJoin {
        /// The member: `HOST[:PORT]`.
        address: String,
        /// The member's host-key fingerprint, `SHA256:…` as OpenSSH prints it.
        fingerprint: String,
        /// The group to join (default `Main_Group`).
        group: Option<GroupName>,
        /// The admin passphrase; `None`: log in with this machine's host key, registered
        /// on the member with `prepjoin add`.
        passphrase: Option<Secret>,
    },
    /// From a joining agent to a member (logged in as `admin`, or with its pre-shared
    /// host key): record it in the membership and send it the cluster.
    Join(JoinRequest),
    /// This machine's name, serial and host key, for `prepjoin add` on a member.
    PrepjoinPrint,
    /// Register a machine to join with its host key (no passphrase).
    PrepjoinAdd {
        /// Its machine name.
        host: MachineName,
        /// Its serial number.
        serial: String,
        /// Its host key (OpenSSH public-key line).
        key: String,
    },
    /// Forget a registered machine.
    PrepjoinDelete {
        /// Its machine name.
        host: MachineName,
    },
    /// The machines registered to join.
    PrepjoinList,
    /// Groups and machines, with serials and connection state.
    ClusterList,
    /// Every link as each machine sees it.
    ConnStatus,
    /// Rename the cluster.
    SetName {
        /// The new name.
        name: String,
    },
    /// Add a group.
    AddGroup {
        /// Its name.
        name: GroupName,
    },
    /// Move a machine to a group.
    SetGroup {
        /// The machine.
        machine: MachineName,
        /// Its new group.
        group: GroupName,
    },
    /// Rename a group, with its sections and machines.
    RenameGroup {
        /// The group.
        from: GroupName,
        /// Its new name.
        to: GroupName,
    },
    /// Delete a group (never the last one).
    DeleteGroup {
        /// The group.
        name: GroupName,
        /// Where its machines go; needed when it has machines.
        move_to: Option<GroupName>,
    },
    /// Detach a machine from the mesh until reconnected.
    Disconnect {
        /// The machine.
        machine: MachineName,
    },
    /// Restore a disconnected machine's links.
    Reconnect {
        /// The machine.
        machine: MachineName,
    },
    /// Remove a machine from the cluster for good.
    Remove {
        /// The machine.
        machine: MachineName,
    },
    /// Rename a member, keeping its membership, settings and history
    /// ([`crate::cluster::rename`]).
    RenameMachine {
        /// The member.
        machine: MachineName,
        /// Its new name.
        to: MachineName,
        /// Its new address (`None`: it keeps its address).
        address: Option<String>,
    },
    /// From a member logged in with its host key: this channel becomes the mesh link
    /// between the two machines.
    PeerLink {
        /// The dialing machine.
        machine: MachineName,
    },
    /// From a member logged in with its host key, whose store was lost or damaged
    /// (`strata cluster repair`): the cluster's change sets, to rebuild it from.
    Repair,
    /// The cluster's recipients (`strata secret recipient`, and what `encrypt` encrypts
    /// to); an administrator's request makes the cluster's first identity if it has none.
    SecretRecipients,
    /// Make a new identity, the current one from now on (`strata secret rotate`).
    SecretRotate,
    /// Remove every identity but the current one (`strata secret retire`), unless a live
    /// section still holds a secret only an older one decrypts.
    SecretRetire,
    /// Which of `texts` (age armoured) the cluster cannot decrypt — with its current
    /// identity only when `current_only` — answered by index, never with a clear value.
    SecretCheck {
        /// The encrypted values.
        texts: Vec<String>,
        /// Try the current identity alone (what a retire would leave).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        current_only: bool,
    },
    /// Decrypt `texts` and encrypt each again to the cluster's current recipient and
    /// `also` (`strata secret reencrypt`); administrators only. The clear values never
    /// leave the agent.
    SecretReencrypt {
        /// The encrypted values.
        texts: Vec<String>,
        /// Further recipients (`age1…`): a break-glass key.
        also: Vec<String>,
    },
}

/// One of the cluster's recipients, as `strata secret recipient` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecipientInfo {
    /// The identity's id (`@identity:ID`).
    pub id: String,
    /// The public recipient (`age1…`).
    pub recipient: String,
    /// When it was made (ms since the epoch).
    pub created_ms: u64,
    /// The newest: what values are encrypted to.
    pub current: bool,
}

/// What the agent answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "kebab-case")]
pub enum Response {
    /// Answer to Hello: who the agent is and who it thinks you are.
    Hello {
        /// The agent's [`PROTOCOL`].
        protocol: u32,
        /// The agent's Strata version.
        version: String,
        /// The agent's machine name.
        machine: String,
        /// The authenticated user.
        user: String,
        /// That user's role.
        role: String,
    },
    /// Every live entry.
    Live {
        /// The agent's machine name.
        machine: String,
        /// The entries, tombstones included.
        entries: Live,
    },
    /// The digest of every live entry.
    Digests {
        /// The agent's machine name.
        machine: String,
        /// By key (`None`: a tombstone).
        digests: Digests,
    },
    /// The live entries asked for.
    Entries {
        /// The agent's machine name.
        machine: String,
        /// Those the agent holds, tombstones included.
        entries: Live,
    },
    /// A change set was committed.
    Applied {
        /// The change set (boxed: it is far larger than the other answers).
        change_set: Box<ChangeSetSummary>,
        /// What it did on this machine.
        running: RunReport,
    },
    /// What a rollback would do ([`Request::RollbackPlan`]).
    RollbackPlan {
        /// The plan: its actions, the base they were computed against, and where it
        /// comes from (`rollback to change set …`). No effective changes per machine.
        plan: Box<Plan>,
    },
    /// There was nothing to commit.
    Unchanged,
    /// The applied change sets, oldest first.
    Log {
        /// Summaries.
        change_sets: Vec<ChangeSetSummary>,
    },
    /// What `check` found.
    Check(Box<CheckReport>),
    /// What `status` shows.
    Status(Box<super::sync_status::SyncStatus>),
    /// Where a change set stands on every member.
    Propagation {
        /// The change set.
        change_set: ChangeSetId,
        /// Every member (this one included), by name.
        machines: Vec<MachinePropagation>,
    },
    /// Writes that lost to concurrent ones, by key.
    Conflicts {
        /// The agent's machine name.
        machine: String,
        /// The lost writes, with the winners.
        lost: Vec<LostWrite>,
    },
    /// The plan's base went stale; nothing was written.
    Stale {
        /// What changed since the plan was computed.
        conflicts: Vec<Conflict>,
    },
    /// The user's role does not allow the request.
    Denied {
        /// Why.
        message: String,
    },
    /// The joiner's agent joined the cluster.
    Joined {
        /// The cluster's name.
        cluster: String,
        /// The member it joined through.
        member: String,
        /// The group it is in.
        group: String,
        /// Its standalone sections the cluster's replaced.
        replaced: Vec<String>,
        /// Anything the member said (a repo's group won, say).
        notes: Vec<String>,
    },
    /// A member admitted a joiner: the cluster as change sets.
    Admitted {
        /// The cluster's name.
        cluster: String,
        /// Every change set, oldest first.
        change_sets: Vec<ChangeSet>,
        /// Anything to tell the operator.
        notes: Vec<String>,
    },
    /// A member's copy of the cluster, for a member rebuilding its store: taken at one
    /// instant, so the digests are those of exactly these change sets.
    Replica {
        /// The cluster's name.
        cluster: String,
        /// Every change set, in the member's order.
        change_sets: Vec<ChangeSet>,
        /// The digest of every live entry they make.
        digests: Digests,
    },
    /// This machine, for `prepjoin add`.
    Prepjoin(PendingEntry),
    /// The machines registered to join.
    PrepjoinList {
        /// Sorted by name.
        entries: Vec<PendingEntry>,
    },
    /// Groups and machines.
    ClusterList(ClusterListing),
    /// Links as each machine sees them.
    ConnStatus(ConnStatus),
    /// The channel is now a mesh link.
    PeerLinked,
    /// The cluster's recipients, the current one first.
    SecretRecipients {
        /// Every live identity's recipient.
        recipients: Vec<RecipientInfo>,
    },
    /// What [`Request::SecretCheck`] found.
    SecretChecked {
        /// The indexes of the texts that do not decrypt.
        undecryptable: Vec<usize>,
    },
    /// What [`Request::SecretReencrypt`] made, parallel to the texts sent: each one
    /// encrypted again, or why it could not be.
    SecretReencrypted {
        /// One per text.
        texts: Vec<Result<String, String>>,
    },
    /// The request failed; nothing was written.
    Error {
        /// What went wrong.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
}

/// What `strata rollout` does to a staged rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RolloutAction {
    /// Stop it where it is: no further wave is released.
    Halt {
        /// Why, for the log and `status`.
        reason: String,
    },
    /// Release every remaining wave at once (also after a halt).
    Promote,
    /// Revert the change where it ran, and stop it.
    Undo,
}

impl Request {
    /// True for the requests that commit a change set an operator asked for (not the
    /// mesh's own membership changes): the ones a follower's branch may refuse.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Request::Apply { .. }
                | Request::ApplyPush { .. }
                | Request::Rollback { .. }
                | Request::ClusterPasswd { .. }
                | Request::SetName { .. }
                | Request::AddGroup { .. }
                | Request::SetGroup { .. }
                | Request::RenameGroup { .. }
                | Request::DeleteGroup { .. }
                | Request::PrepjoinAdd { .. }
                | Request::PrepjoinDelete { .. }
        )
    }
}

impl Response {
    /// An error response.
    pub fn error(message: impl Into<String>, help: Option<&str>) -> Response {
        Response::Error {
            message: message.into(),
            help: help.map(str::to_owned),
        }
    }
}
