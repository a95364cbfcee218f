//! One machine's side of the exchange ([`Replica`]): the index of what it holds, and
//! which peer each origin it lacks is being pulled from, so that a machine that comes
//! back to many peers at once takes what it missed once, from one of them, rather than
//! once from each.

use std::collections::BTreeMap;

use super::{Hlc, Index, MachineName, Out, Summary, SyncMsg};
use crate::model::Version;

/// What a machine holds and what it is pulling. Pure: the runtime passes in the
/// messages peers send, the versions it merges and the links that go down, and carries
/// out the [`Out`]s that come back.
#[derive(Debug, Clone, Default)]
pub struct Replica {
    index: Index,
    /// Per origin being pulled: from whom, and the reading that completes the pull.
    pulls: BTreeMap<MachineName, Pull>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pull {
    peer: MachineName,
    until: Hlc,
}

impl Replica {
    /// A replica holding what `index` says, pulling nothing.
    pub fn new(index: Index) -> Replica {
        Replica {
            index,
            pulls: BTreeMap::new(),
        }
    }

    /// What is held.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The compact account of what is held, as peers are sent it.
    pub fn summary(&self) -> Summary {
        self.index.summary()
    }

    /// Takes a new index (the store's, read again after its history was replaced);
    /// pulls it completes are done.
    pub fn replace(&mut self, index: Index) {
        self.index = index;
        let summary = self.index.summary();
        self.pulls.retain(|origin, p| {
            summary
                .origins
                .get(origin)
                .is_none_or(|held| held.max < p.until)
        });
    }

    /// Records that the change set of `version` is held (merged, or committed here);
    /// false if it already was. A pull of its origin that reaches its reading is done.
    pub fn insert(&mut self, version: &Version) -> bool {
        if self
            .pulls
            .get(&version.origin)
            .is_some_and(|p| version.hlc >= p.until)
        {
            self.pulls.remove(&version.origin);
        }
        self.index.insert(version)
    }

    /// Forgets the pulls from `peer`, whose link went down: the next summary from any
    /// other peer that has what they were for pulls it from that peer.
    pub fn link_down(&mut self, peer: &MachineName) {
        self.pulls.retain(|_, p| p.peer != *peer);
    }

    /// The origins being pulled, each with the peer it is pulled from.
    #[cfg(test)]
    pub fn pulling(&self) -> impl Iterator<Item = (&MachineName, &MachineName)> {
        self.pulls.iter().map(|(origin, p)| (origin, &p.peer))
    }

    /// The answer to a message of the exchange from `from`.
    pub fn on_message(&mut self, from: &MachineName, msg: &SyncMsg) -> Vec<Out> {
        match msg {
            SyncMsg::Summary(s) => self.on_summary(from, s),
            SyncMsg::Pull { origins } => self.index.on_pull(origins),
            SyncMsg::Ids { origin, ids } => self.index.on_ids(origin, ids),
            SyncMsg::Want { ids } => self.index.on_want(ids),
        }
    }

    /// A peer's summary: pulls from it each origin where it reaches further, unless
    /// another peer's answer for that origin is on its way (the same peer's summary
    /// pulls again: its earlier answer may be lost), and lists ids where
    /// [`Index::on_summary`] says so.
    fn on_summary(&mut self, from: &MachineName, theirs: &Summary) -> Vec<Out> {
        let reading = self.index.on_summary(theirs);
        let mut pull = BTreeMap::new();
        for (origin, (mine, until)) in reading.behind {
            if self.pulls.get(&origin).is_some_and(|p| p.peer != *from) {
                continue;
            }
            self.pulls.insert(
                origin.clone(),
                Pull {
                    peer: from.clone(),
                    until,
                },
            );
            pull.insert(origin, mine);
        }
        let mut out = reading.lists;
        if !pull.is_empty() {
            out.insert(0, Out::Send(SyncMsg::Pull { origins: pull }));
        }
        out
    }
}
