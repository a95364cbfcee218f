//! The index of the change sets one machine holds: per origin machine, their ids in
//! clock order, with a running count and digest so that a summary, and the count and
//! digest of any prefix, cost what differs rather than what is held.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::{ChangeSetId, Hlc, MachineName, OriginSummary, Summary};
use crate::model::Version;

/// Which change sets a machine holds, by origin and clock reading. It holds versions
/// only, never bodies: the store keeps those.
#[derive(Debug, Clone, Default)]
pub struct Index {
    origins: BTreeMap<MachineName, Origin>,
    /// Every id held, with its version: membership, and the way back to the store.
    ids: HashMap<ChangeSetId, Version>,
}

/// What is held of one origin's change sets.
#[derive(Debug, Clone, Default)]
pub(super) struct Origin {
    /// Clock reading → id. One origin never uses a reading twice, and a version is
    /// (reading, origin), so the reading alone names the change set here.
    pub(super) by_hlc: BTreeMap<Hlc, ChangeSetId>,
    /// The wrapping sum of the ids' bits.
    digest: u64,
}

/// The count and digest of the change sets of one origin up to a clock reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefix {
    /// How many.
    pub count: u64,
    /// The wrapping sum of their ids' bits, as in [`OriginSummary::digest`].
    pub digest: u64,
}

impl Origin {
    /// This origin's record, as [`Index::summary`] gives it (`None` when empty).
    pub(super) fn summary(&self) -> Option<OriginSummary> {
        let (&max, _) = self.by_hlc.last_key_value()?;
        Some(OriginSummary {
            count: self.by_hlc.len() as u64,
            max,
            digest: self.digest,
        })
    }

    /// The ids after `hlc`, in clock order.
    pub(super) fn after(&self, hlc: Hlc) -> impl Iterator<Item = &ChangeSetId> {
        self.by_hlc
            .range((Bound::Excluded(hlc), Bound::Unbounded))
            .map(|(_, id)| id)
    }

    /// The count and digest up to `hlc`, included: the totals less what lies after it,
    /// so the cost is that of the (usually short) part after `hlc`.
    pub(super) fn prefix(&self, hlc: Hlc) -> Prefix {
        let (count, digest) = self.after(hlc).fold((0u64, 0u64), |(n, d), id| {
            (n + 1, d.wrapping_add(id.bits()))
        });
        Prefix {
            count: self.by_hlc.len() as u64 - count,
            digest: self.digest.wrapping_sub(digest),
        }
    }
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// The index of the change sets with these versions (a store's history).
    pub fn from_versions<'a>(versions: impl IntoIterator<Item = &'a Version>) -> Index {
        let mut index = Index::new();
        for v in versions {
            index.insert(v);
        }
        index
    }

    /// Records that the change set of `version` is held; false if it already was.
    pub fn insert(&mut self, version: &Version) -> bool {
        let id = ChangeSetId::of(version);
        if self.ids.contains_key(&id) {
            return false;
        }
        let origin = self.origins.entry(version.origin.clone()).or_default();
        origin.digest = origin.digest.wrapping_add(id.bits());
        origin.by_hlc.insert(version.hlc, id.clone());
        self.ids.insert(id, version.clone());
        true
    }

    /// True when the change set `id` is held.
    pub fn contains(&self, id: &ChangeSetId) -> bool {
        self.ids.contains_key(id)
    }

    /// How many change sets are held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The version of a held change set.
    pub fn version(&self, id: &ChangeSetId) -> Option<&Version> {
        self.ids.get(id)
    }

    /// The versions of those of `ids` that are held, in the order given: what the
    /// runtime passes to [`crate::state::Store::change_sets_of`] for
    /// [`super::Out::SendChangeSets`].
    pub fn versions_of(&self, ids: &[ChangeSetId]) -> Vec<Version> {
        ids.iter()
            .filter_map(|id| self.ids.get(id).cloned())
            .collect()
    }

    /// The ids held of `origin`, in clock order.
    pub fn ids_of(&self, origin: &MachineName) -> impl Iterator<Item = &ChangeSetId> {
        self.origins
            .get(origin)
            .into_iter()
            .flat_map(|o| o.by_hlc.values())
    }

    /// The count and digest of what is held of `origin` up to clock reading `hlc`
    /// (included). Costs a lookup plus the part after `hlc`, not the whole origin.
    pub fn prefix(&self, origin: &MachineName, hlc: Hlc) -> Prefix {
        self.origins
            .get(origin)
            .map_or_else(Prefix::default, |o| o.prefix(hlc))
    }

    /// The compact account of what is held: one record per origin.
    pub fn summary(&self) -> Summary {
        Summary {
            origins: self
                .origins
                .iter()
                .filter_map(|(name, o)| Some((name.clone(), o.summary()?)))
                .collect(),
        }
    }

    /// Each origin held, with its record.
    pub(super) fn origins(&self) -> impl Iterator<Item = (&MachineName, &Origin)> {
        self.origins.iter()
    }

    /// What is held of one origin.
    pub(super) fn origin(&self, name: &MachineName) -> Option<&Origin> {
        self.origins.get(name)
    }
}
