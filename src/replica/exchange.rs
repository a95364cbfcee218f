//! The answers of the exchange: what an index sends in reply to a peer's summary, id
//! list or wants (the rules are in the module docs of [`super`]).

use std::collections::HashSet;

use super::index::Origin;
use super::{ChangeSetId, Index, MachineName, OriginSummary, Out, Summary, SyncMsg};

/// What to do about one origin, given my record and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Equal, or the peer's turn: send nothing.
    Nothing,
    /// The peer holds a strict prefix of mine: send mine after its greatest reading
    /// (`None`: it holds nothing of the origin, send all).
    SendAfter(Option<super::Hlc>),
    /// The summaries cannot tell what differs: send my id list.
    SendIds,
}

fn decide(mine: &Origin, ours: OriginSummary, theirs: Option<&OriginSummary>) -> Decision {
    let Some(theirs) = theirs else {
        return Decision::SendAfter(None);
    };
    if ours == *theirs {
        return Decision::Nothing;
    }
    match ours.max.cmp(&theirs.max) {
        std::cmp::Ordering::Greater => {
            let prefix = mine.prefix(theirs.max);
            if (prefix.count, prefix.digest) == (theirs.count, theirs.digest) {
                Decision::SendAfter(Some(theirs.max))
            } else {
                Decision::SendIds
            }
        }
        // Theirs reaches further: their answer to my summary handles the origin.
        std::cmp::Ordering::Less => Decision::Nothing,
        // The same greatest reading: the smaller side lists its ids, so one side does.
        std::cmp::Ordering::Equal if (ours.count, ours.digest) < (theirs.count, theirs.digest) => {
            Decision::SendIds
        }
        std::cmp::Ordering::Equal => Decision::Nothing,
    }
}

impl Index {
    /// The answer to a peer's summary: per origin held here, the change sets the peer
    /// lacks when the summaries show it (one [`Out::SendChangeSets`], in clock order per
    /// origin), else [`SyncMsg::Ids`] where they cannot tell. Origins where the peer
    /// holds what this index lacks are left to the peer's answer to this index's
    /// summary: both sides must send one.
    pub fn on_summary(&self, theirs: &Summary) -> Vec<Out> {
        let mut send = Vec::new();
        let mut out = Vec::new();
        for (name, origin) in self.origins() {
            let Some(ours) = origin.summary() else {
                continue;
            };
            match decide(origin, ours, theirs.origins.get(name)) {
                Decision::Nothing => {}
                Decision::SendAfter(None) => send.extend(origin.by_hlc.values().cloned()),
                Decision::SendAfter(Some(max)) => send.extend(origin.after(max).cloned()),
                Decision::SendIds => out.push(Out::Send(SyncMsg::Ids {
                    origin: name.clone(),
                    ids: origin.by_hlc.values().cloned().collect(),
                })),
            }
        }
        if !send.is_empty() {
            out.insert(0, Out::SendChangeSets(send));
        }
        out
    }

    /// The answer to a peer's id list of `origin`: the change sets of that origin it
    /// lacks, in clock order, and a [`SyncMsg::Want`] of the listed ones this index
    /// lacks.
    pub fn on_ids(&self, origin: &MachineName, theirs: &[ChangeSetId]) -> Vec<Out> {
        let listed: HashSet<&ChangeSetId> = theirs.iter().collect();
        let send: Vec<ChangeSetId> = self
            .origin(origin)
            .into_iter()
            .flat_map(|o| o.by_hlc.values())
            .filter(|id| !listed.contains(id))
            .cloned()
            .collect();
        let mut wanted = HashSet::new();
        let want: Vec<ChangeSetId> = theirs
            .iter()
            .filter(|id| !self.contains(id) && wanted.insert(*id))
            .cloned()
            .collect();
        let mut out = Vec::new();
        if !send.is_empty() {
            out.push(Out::SendChangeSets(send));
        }
        if !want.is_empty() {
            out.push(Out::Send(SyncMsg::Want { ids: want }));
        }
        out
    }

    /// The answer to a peer's wants: those of the change sets it names that this index
    /// holds (each once).
    pub fn on_want(&self, ids: &[ChangeSetId]) -> Vec<Out> {
        let mut seen = HashSet::new();
        let send: Vec<ChangeSetId> = ids
            .iter()
            .filter(|id| self.contains(id) && seen.insert(*id))
            .cloned()
            .collect();
        if send.is_empty() {
            Vec::new()
        } else {
            vec![Out::SendChangeSets(send)]
        }
    }

    /// The answer to any message of the exchange.
    pub fn on_message(&self, msg: &SyncMsg) -> Vec<Out> {
        match msg {
            SyncMsg::Summary(s) => self.on_summary(s),
            SyncMsg::Ids { origin, ids } => self.on_ids(origin, ids),
            SyncMsg::Want { ids } => self.on_want(ids),
        }
    }
}
