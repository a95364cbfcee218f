//! What members send one another over a mesh link: envelopes addressed to one machine,
//! forwarded hop by hop when the direct link between sender and receiver is down.

use serde::{Deserialize, Serialize};

use super::consistency::{MachineState, Stamps};
use super::run::RunState;
use super::table::LinkReport;
use crate::model::{Key, MachineName, Version};
use crate::replica::SyncMsg;
use crate::state::{ChangeSet, Entry, StoreFailure};

/// How many hops an envelope may take before it is dropped (a full mesh needs two at
/// most; the bound stops a loop made of stale routes).
pub const MAX_HOPS: u8 = 8;

/// One message between members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The machine that sent it.
    pub from: MachineName,
    /// The machine it is for.
    pub to: MachineName,
    /// Hops left.
    pub ttl: u8,
    /// What it says.
    pub body: PeerMsg,
}

/// What one member tells another. Named by a key around its fields (`{"pong":{"seq":1}}`)
/// rather than a field among them: serde reads a message tagged inside by buffering it
/// whole first, a cost paid for every change set and announcement on every link.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerMsg {
    /// Sent every ping interval: the sender's links, for routes and `connstatus`, and
    /// whether it can write its store, for `cluster list`.
    Ping {
        /// Echoed in the pong.
        seq: u64,
        /// The sender's direct links.
        links: Vec<LinkReport>,
        /// Since when, and why, the sender cannot write its store (it is Degraded);
        /// absent while it can (and from agents that do not say).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        store_failure: Option<StoreFailure>,
    },
    /// The answer to a ping.
    Pong {
        /// The ping's sequence number.
        seq: u64,
    },
    /// Change sets the receiver may lack (a new commit, or what a sync found missing).
    ChangeSets {
        /// Oldest first.
        sets: Vec<ChangeSet>,
    },
    /// Anti-entropy: which change sets the sender holds, compactly, and what it pulls
    /// ([`crate::replica`]); each side then gets what it lacks from one peer.
    Sync(SyncMsg),
    /// A question from `check` or `apply` (answered with [`PeerMsg::Answer`]).
    Ask {
        /// Chosen by the asker; echoed in the answer.
        id: u64,
        /// The question.
        query: Query,
    },
    /// The answer to [`PeerMsg::Ask`].
    Answer {
        /// The question's id.
        id: u64,
        /// The answer.
        answer: Box<Answer>,
    },
    /// The sender parked this link: it takes the receiver for no peer (it is
    /// disconnected, or has not heard of the receiver's membership yet) and takes only
    /// change sets over it. The receiver answers with its latest word on both
    /// memberships, which may make them peers (what reconnects a disconnected machine).
    Parked,
    /// Above the full mesh ([`super::overlay`]): link-state announcements the receiver
    /// may not hold — everything the sender holds when a link opens, then each new one
    /// as it is flooded ([`super::link_state`]). Sent over one link, never routed.
    LinkState {
        /// The announcements.
        lsas: Vec<super::link_state::Lsa>,
    },
}

/// What one member asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "query", rename_all = "kebab-case")]
pub enum Query {
    /// Its [`MachineState`]: the summary of what it holds, and local edits.
    State,
    /// The stamp of every entry it holds.
    Stamps,
    /// One entry, value included.
    Entry {
        /// Which.
        key: Key,
    },
    /// Where each of these change sets stands there.
    RunStates {
        /// The change sets' versions.
        versions: Vec<Version>,
    },
    /// The hooks that failed when each of these change sets ran there (a staged
    /// rollout's gate: [`crate::rollout`]).
    Failures {
        /// The change sets' versions.
        versions: Vec<Version>,
    },
    /// The config repo's objects of a commit the cluster applied, as a git pack of what
    /// the commit reaches minus what the asker's commits reach, from byte `offset` on
    /// ([`crate::agent::mesh::git_fetch`]).
    GitPack {
        /// The commit (full hex id).
        commit: String,
        /// Commits the asker holds complete (its branch tips).
        have: Vec<String>,
        /// The first byte of the pack wanted.
        offset: u64,
    },
}

/// What a member answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum Answer {
    /// To [`Query::State`].
    State(MachineState),
    /// To [`Query::Stamps`].
    Stamps {
        /// By key.
        stamps: Stamps,
    },
    /// To [`Query::Entry`] (`None`: it holds no such entry).
    Entry {
        /// The entry, tombstone or value.
        entry: Option<Box<Entry>>,
    },
    /// To [`Query::RunStates`], in the order asked.
    RunStates {
        /// One per version.
        states: Vec<RunState>,
    },
    /// To [`Query::Failures`], in the order asked: the commands of the hooks that failed
    /// (none: it ran clean, or has not run).
    Failures {
        /// One list per version.
        failed: Vec<Vec<String>>,
    },
    /// To [`Query::GitPack`]: one chunk of the pack.
    GitPack {
        /// The pack's own checksum (its last 20 bytes, hex): the chunks of one pack
        /// all name it.
        pack: String,
        /// The pack's size in bytes.
        total: u64,
        /// Where this chunk starts.
        offset: u64,
        /// The chunk, hex (the frame is deflated, which takes the doubling back).
        data: String,
    },
    /// It could not answer (its store failed).
    Failed {
        /// Why.
        message: String,
    },
}
