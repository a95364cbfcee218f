//! Anti-entropy, pure: which change sets a machine holds ([`Index`]), a compact account
//! of them ([`Summary`]), the messages two peers exchange ([`SyncMsg`]) so that each
//! gets exactly what it lacks, at a cost that follows what differs rather than what
//! exists, and which peer each missing origin is being pulled from ([`Replica`]). No
//! sockets, no clock, no store: the runtime passes messages in and carries out what
//! comes back ([`Out`]).
//!
//! # The exchange
//! Every machine holds every change set; change sets are named by [`ChangeSetId`] and
//! grouped by the machine that made them (their version's origin), where they are
//! ordered by clock reading. A peer's account of one origin is three numbers: how many
//! change sets it holds, the greatest clock reading among them, and an order-independent
//! digest of their ids ([`OriginSummary`]).
//!
//! Bodies move in the exchange only when asked for, and a machine asks one peer at a
//! time for each origin: a machine that comes back to twenty peers at once takes what it
//! missed once, not twenty times. A change set committed here is still pushed to every
//! linked peer at once (that is propagation, not the exchange).
//!
//! 1. On link up, on reconnect and on an interval, **both** sides send
//!    `SyncMsg::Summary(summary)`.
//! 2. Each side reads the other's summary ([`Replica::on_message`], with
//!    [`Index::on_summary`]):
//!    - where the peer's greatest reading of an origin is above mine, or I hold nothing
//!      of it, I **pull** it: `SyncMsg::Pull` with my record of each such origin —
//!      unless I am pulling that origin from another peer already (its answer is on the
//!      way; the pull is done when I hold a change set of that origin at the reading the
//!      peer's summary gave, and is forgotten when that peer's link goes down). The same
//!      peer's next summary pulls again, so a lost pull costs one interval;
//!    - where mine is above the peer's → nothing: the peer pulls it on my summary, which
//!      is why both sides must send one;
//!    - the same greatest reading, different sets → the side with the smaller (count,
//!      digest) sends `SyncMsg::Ids { origin, ids }`, its full id list of that origin, so
//!      exactly one of the two does.
//! 3. [`Index::on_pull`] answers a pull, per origin:
//!    - the puller holds nothing of it → every change set of it;
//!    - its record equals mine restricted to readings up to its greatest one (a strict
//!      prefix: the common case, when pushes were lost after some point) → mine after
//!      its greatest reading;
//!    - otherwise (holes on either side: pushes arrive out of order and links lose
//!      messages) → `SyncMsg::Ids`, my full id list of that origin.
//! 4. [`Index::on_ids`] answers an id list: the change sets of that origin the peer
//!    lacks, and `SyncMsg::Want` of those I lack; [`Index::on_want`] answers with the
//!    wanted change sets I hold.
//!
//! [`Out::SendChangeSets`] names change sets; the runtime loads them
//! ([`crate::state::Store::change_sets_of`], with the versions from
//! [`Index::versions_of`]) and sends the bodies. On receiving a body it merges it (last
//! writer wins, [`crate::cluster::node::Node::merge`]) and then [`Replica::insert`]s its
//! version; after a local commit it inserts the new version and pushes the change set to
//! the peers it is linked to. Every answer depends only on what the replica holds when
//! the message arrives, so messages may be repeated, reordered or lost: the next
//! exchange repairs what a lost one missed, and a change set received twice merges once.

mod exchange;
mod index;
mod pulls;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::model::{ChangeSetId, Hlc, MachineName};
pub use exchange::Reading;
pub use index::{Index, Prefix};
pub use pulls::Replica;

/// A compact account of the change sets a machine holds: one record per origin machine,
/// so 10,000 change sets made on 5 machines are 5 records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Per origin machine, what is held of the change sets it made; origins of which
    /// nothing is held are absent.
    pub origins: BTreeMap<MachineName, OriginSummary>,
}

/// What a machine holds of the change sets one origin made.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct OriginSummary {
    /// How many are held.
    pub count: u64,
    /// The greatest clock reading among them.
    pub max: Hlc,
    /// The wrapping sum of their ids' [`ChangeSetId::bits`]: equal sets give equal
    /// digests whatever order they arrived in.
    pub digest: u64,
}

/// A message of the anti-entropy exchange. Change-set bodies are not among them: the
/// runtime sends those, loaded from its store, when an answer says [`Out::SendChangeSets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "sync", rename_all = "kebab-case")]
pub enum SyncMsg {
    /// What the sender holds; answered with [`Replica::on_message`] (pulls and id lists).
    Summary(Summary),
    /// The sender's record of each origin it pulls (zero when it holds none of it);
    /// answered with [`Index::on_pull`].
    Pull {
        /// Origin → the sender's record of it.
        origins: BTreeMap<MachineName, OriginSummary>,
    },
    /// Every id the sender holds of one origin, in clock order: sent only when the
    /// summaries cannot tell what differs. Answered with [`Index::on_ids`].
    Ids {
        /// The origin machine.
        origin: MachineName,
        /// The sender's ids of that origin.
        ids: Vec<ChangeSetId>,
    },
    /// Change sets the sender lacks; answered with [`Index::on_want`].
    Want {
        /// Their ids.
        ids: Vec<ChangeSetId>,
    },
}

/// What the runtime does with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send this message to the peer.
    Send(SyncMsg),
    /// Load these change sets from the store and send them to the peer, in this order.
    SendChangeSets(Vec<ChangeSetId>),
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    #[test]
    fn messages_carry_their_kind_in_a_sync_field() {
        let msg = SyncMsg::Want { ids: vec![] };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"sync":"want","ids":[]}"#
        );
        // A machine may be called `sync`: origins sit under their own field.
        let summary = SyncMsg::Summary(Summary {
            origins: [(
                MachineName::new("sync").unwrap(),
                OriginSummary {
                    count: 2,
                    max: Hlc(7),
                    digest: 9,
                },
            )]
            .into(),
        });
        let json = serde_json::to_string(&summary).unwrap();
        assert_eq!(
            json,
            r#"{"sync":"summary","origins":{"sync":{"count":2,"max":7,"digest":9}}}"#
        );
        assert_eq!(serde_json::from_str::<SyncMsg>(&json).unwrap(), summary);
    }
}
