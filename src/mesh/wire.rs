//! What members send one another over a mesh link: envelopes addressed to one machine,
//! forwarded hop by hop when the direct link between sender and receiver is down.

use serde::{Deserialize, Serialize};

use super::table::LinkReport;
use crate::model::MachineName;
use crate::replica::SyncMsg;
use crate::state::ChangeSet;

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

/// What one member tells another.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "kebab-case")]
pub enum PeerMsg {
    /// Sent every ping interval: the sender's links, for routes and `connstatus`.
    Ping {
        /// Echoed in the pong.
        seq: u64,
        /// The sender's direct links.
        links: Vec<LinkReport>,
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
    /// Anti-entropy: which change sets the sender holds, compactly
    /// ([`crate::replica`]); each side then sends what the other lacks.
    Sync(SyncMsg),
}
