//! The answers of the exchange: what an index pulls, lists or sends in reply to a peer's
//! summary, pull, id list or wants (the rules are in the module docs of [`super`]).

use std::collections::{BTreeMap, HashSet};

use super::index::Origin;
use super::{ChangeSetId, Hlc, Index, MachineName, OriginSummary, Out, Summary, SyncMsg};

/// What to do about one origin, given my record and the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Equal, or the peer's turn: send nothing.
    Nothing,
    /// The peer holds a strict prefix of mine: send mine after its greatest reading
    /// (`None`: it holds nothing of the origin, send all).
    SendAfter(Option<Hlc>),
    /// The summaries cannot tell what differs: send my id list.
    SendIds,
}

fn decide(mine: &Origin, ours: OriginSummary, theirs: Option<&OriginSummary>) -> Decision {
    let Some(theirs) = theirs.filter(|t| t.count > 0) else {
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
        // Theirs reaches further: it has nothing to pull from me.
        std::cmp::Ordering::Less => Decision::Nothing,
        // The same greatest reading: the smaller side lists its ids, so one side does.
        std::cmp::Ordering::Equal if (ours.count, ours.digest) < (theirs.count, theirs.digest) => {
            Decision::SendIds
        }
        std::cmp::Ordering::Equal => Decision::Nothing,
    }
}

/// What a peer's summary shows this index ([`Index::on_summary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// The origins where the peer reaches further (or holds what this index holds
    /// none of): per origin, this index's record of it (zero when it holds none) and
    /// the peer's greatest reading, which the pull is complete at.
    pub behind: BTreeMap<MachineName, (OriginSummary, Hlc)>,
    /// Id lists to send where both reach the same reading with different sets.
    pub lists: Vec<Out>,
}

impl Index {
    /// What a peer's summary shows: the origins to pull from it, and the id lists to
    /// send it where the summaries cannot tell what differs. Origins this index leads
    /// are left to the peer, which pulls them on this index's summary: both sides must
    /// send one.
    pub fn on_summary(&self, theirs: &Summary) -> Reading {
        let mut reading = Reading::default();
        for (name, t) in &theirs.origins {
            let mine = self.origin(name).and_then(Origin::summary);
            if mine.is_none_or(|m| m.max < t.max) {
                reading
                    .behind
                    .insert(name.clone(), (mine.unwrap_or_default(), t.max));
            }
        }
        for (name, origin) in self.origins() {
            let Some(ours) = origin.summary() else {
                continue;
            };
            if let Some(t) = theirs.origins.get(name)
                && t.max == ours.max
                && decide(origin, ours, Some(t)) == Decision::SendIds
            {
                reading.lists.push(Out::Send(SyncMsg::Ids {
                    origin: name.clone(),
                    ids: origin.by_hlc.values().cloned().collect(),
                }));
            }
        }
        reading
    }

    /// The answer to a peer's pull (its record of each origin it pulls, zero when it
    /// holds none): the change sets it lacks where the records show them (one
    /// [`Out::SendChangeSets`], in clock order per origin), else [`SyncMsg::Ids`].
    pub fn on_pull(&self, theirs: &BTreeMap<MachineName, OriginSummary>) -> Vec<Out> {
        let mut send = Vec::new();
        let mut out = Vec::new();
        for (name, t) in theirs {
            let Some(origin) = self.origin(name) else {
                continue;
            };
            let Some(ours) = origin.summary() else {
                continue;
            };
            match decide(origin, ours, Some(t)) {
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
}
