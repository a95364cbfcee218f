//! The durable store: every entry an agent holds, with its version and provenance, and
//! the history of change sets that wrote them.
//!
//! An entry is a [`Key`] with a typed value ([`EntryValue`]) or a tombstone (`None`) when
//! it was removed, so that "no settings" is recorded as firmly as settings are. Every
//! write belongs to exactly one [`ChangeSet`], identified across the cluster by its
//! version ([`ChangeSetId`]). A store has two write paths:
//! - [`Store::commit`], for a change made here: atomic and durable, after checking that
//!   the entries it was computed against have not changed since (the seed's commit-time
//!   conflict check);
//! - [`Store::merge`], for a change set made elsewhere: per key the greater version wins,
//!   with no base check, and merging the same change set twice changes nothing.
//!
//! History is append-only: rollback writes a new change set.
//!
//! [`Store`] is the small trait; [`DiskStore`] (redb) is the real one and
//! [`MemoryStore`] its in-memory twin for tests.

mod conflicts;
mod decoded;
mod disk;
pub mod facts;
mod health;
mod memory;
mod migrate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::model::{
    ChangeMeta, ChangeSetId, Clock, ClockSkew, EntryValue, Hlc, Key, KeyParseError, Source, Stamp,
    Version,
};
pub use conflicts::{LostWrite, conflicts, lost_to};
pub use disk::DiskStore;
pub use health::{Health, StoreFailure};
pub use memory::MemoryStore;

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The value, or `None` for a tombstone (removed).
    pub value: Option<EntryValue>,
    /// Version and provenance of the last write.
    pub stamp: Stamp,
}

/// Every entry of a store, tombstones included.
pub type Live = BTreeMap<Key, Entry>;

/// What a change set writes: key → new value (`None`: a tombstone).
pub type Writes = BTreeMap<Key, Option<EntryValue>>;

/// The version a plan saw for each key it writes (`None`: the key did not exist).
pub type Base = BTreeMap<Key, Option<Version>>;

/// A change set to commit: writes, the base they were computed against, provenance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    /// What to write.
    pub writes: Writes,
    /// What the live entries were when the writes were computed.
    pub base: Base,
    /// Author, source, message.
    pub meta: ChangeMeta,
    /// The version every write gets.
    pub version: Version,
    /// Wall time, milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// Lost writes this change set settles (`check --resolve`): see
    /// [`ChangeSet::settles`].
    #[serde(default)]
    pub settles: Vec<Version>,
}

/// A committed change set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    /// Position in this store's history, from 1: a display index only, which differs
    /// between machines. The identity is [`ChangeSet::id`].
    pub seq: u64,
    /// The version of every write in it.
    pub version: Version,
    /// Wall time of the commit.
    pub wall_ms: u64,
    /// Author, source, message.
    pub meta: ChangeMeta,
    /// What it wrote.
    pub writes: Writes,
    /// For each key it writes, the version of the entry it replaced on the machine that
    /// committed it (`None`: there was none): what that machine had seen. A write that
    /// names the version it replaced is a successor; two writes that name the same
    /// predecessor were concurrent, and the one that lost is in the conflict log
    /// ([`conflicts`](fn@conflicts)). `None` for change sets recorded before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<Base>,
    /// Writes in the conflict log that this change set settles: made by `check
    /// --resolve` knowing of them, so `check` stops listing them (the log keeps them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settles: Vec<Version>,
}

/// A change set without its values, for `strata log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangeSetSummary {
    /// The identity, the same on every machine.
    pub id: ChangeSetId,
    /// This store's display index.
    pub seq: u64,
    /// Version of its writes.
    pub version: Version,
    /// Wall time of the commit.
    pub wall_ms: u64,
    /// Author, source, message.
    pub meta: ChangeMeta,
    /// The keys it wrote.
    pub keys: Vec<Key>,
}

impl ChangeSet {
    /// The identity of this change set across the cluster.
    pub fn id(&self) -> ChangeSetId {
        ChangeSetId::of(&self.version)
    }

    /// This change set without its values.
    pub fn summary(&self) -> ChangeSetSummary {
        ChangeSetSummary {
            id: self.id(),
            seq: self.seq,
            version: self.version.clone(),
            wall_ms: self.wall_ms,
            meta: self.meta.clone(),
            keys: self.writes.keys().cloned().collect(),
        }
    }

    /// The stamp its writes carry.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            version: self.version.clone(),
            wall_ms: self.wall_ms,
            meta: self.meta.clone(),
        }
    }
}

/// What merging a change set did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    /// False when the store already had the change set (nothing was written).
    pub new: bool,
    /// The keys whose live entry it changed: those it won (its precedence was greater),
    /// and memberships it brought newer facts of ([`facts`]).
    pub changed: Vec<Key>,
    /// The entries it won over, as they were: what a lost write is read from
    /// ([`conflicts::lost_to`]) without reading them again.
    pub replaced: Live,
}

/// A key whose live version is not the one a proposal was computed against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The key.
    pub key: Key,
    /// The version the plan saw (`None`: absent).
    pub expected: Option<Version>,
    /// What is there now (`None`: absent).
    pub found: Option<Stamp>,
    /// True when what is there now is a tombstone: the entry was removed.
    #[serde(default)]
    pub removed: bool,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.found {
            Some(s) => write!(
                f,
                "{} was {} by {} on {} in change set {} ({})",
                self.key,
                if self.removed {
                    "removed"
                } else if self.expected.is_none() {
                    "created"
                } else {
                    "changed"
                },
                s.meta.author,
                s.meta.host,
                s.change_set(),
                s.meta.source
            ),
            None => write!(f, "{} was removed", self.key),
        }
    }
}

/// The store could not be read or written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    /// The underlying database failed.
    #[error("store: {0}")]
    #[diagnostic(code(strata::store))]
    Backend(String),
    /// The store's file could not be read or written (a full or failing disk). Nothing
    /// was written; the store is reopened at its next use.
    #[error("store: {0}")]
    #[diagnostic(
        code(strata::store::io),
        help(
            "nothing was written; the disk may be full or failing: free space, and the agent reopens its store by itself"
        )
    )]
    Io(String),
    /// Another process holds the store.
    #[error("the store at {0} is in use by another agent")]
    #[diagnostic(
        code(strata::store::locked),
        help("stop the other agent, or use another --state-dir")
    )]
    Locked(String),
    /// A stored record did not decode: the file was written by something else.
    #[error("store: corrupt record for {key}: {message}")]
    #[diagnostic(code(strata::store::corrupt))]
    Corrupt {
        /// Which record.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// The store file does not verify: changed outside Strata, or a failing disk.
    #[error("the store at {path} is damaged: {message}")]
    #[diagnostic(
        code(strata::store::damaged),
        help(
            "a page of it does not match its checksum: it was changed outside Strata, or the disk is failing. \
             The agent will not serve it and left it as it is: with the agent stopped, rebuild it from a member with `strata cluster repair MEMBER --fingerprint SHA256:… --state-dir DIR`, or restore it from a backup"
        )
    )]
    Damaged {
        /// The store file.
        path: String,
        /// What redb found.
        message: String,
    },
    /// The store was written in an encoding this build does not read.
    #[error("the store at {path} uses format {found}; this Strata reads format {expected}")]
    #[diagnostic(
        code(strata::store::format),
        help(
            "run the Strata version that wrote it, or move the state dir aside and let this agent start a new one"
        )
    )]
    Format {
        /// The store file.
        path: String,
        /// The format it was written in.
        found: u32,
        /// The format this build reads.
        expected: u32,
    },
}

/// A commit was not made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CommitError {
    /// The entries the proposal was computed against changed since.
    #[error("the plan is stale: {} changed since it was computed", crate::text::count(.0.len(), "entry"))]
    #[diagnostic(
        code(strata::apply::stale),
        help("run `strata plan` again and review the changes")
    )]
    Stale(Vec<Conflict>),
    /// The store failed; nothing was written.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
}

/// Durable storage of entries and change sets. Implementations write atomically: after
/// a crash at any point, a store holds either all of a change set or none of it.
pub trait Store {
    /// Every entry, tombstones included.
    fn live(&self) -> Result<Live, StoreError>;

    /// The entries whose key's text form starts with one of `prefixes` (`"@"`: all
    /// membership; `"machine:lab1/"`: one machine's sections), tombstones included: what
    /// one machine's pipeline needs of a large store, without reading all of it.
    fn live_under(&self, prefixes: &[String]) -> Result<Live, StoreError>;

    /// The entries of `keys` that the store holds, tombstones included (keys it does not
    /// hold are left out): what a plan fetches of a large store, by key.
    fn entries(&self, keys: &[Key]) -> Result<Live, StoreError>;

    /// Local writes: checks `proposal.base` against the live entries and, if none
    /// changed, writes every entry and the change set in one durable transaction.
    /// Returns the change set.
    fn commit(&mut self, proposal: Proposal) -> Result<ChangeSet, CommitError>;

    /// A change set made elsewhere: records it and, per key, replaces the live entry
    /// when the change set's version is greater (last writer wins), in one durable
    /// transaction. No base check; merging a change set the store already has changes
    /// nothing. The change set's `seq` is ignored: the store gives it its own.
    fn merge(&mut self, change_set: ChangeSet) -> Result<Merged, StoreError>;

    /// Every change set, in the order this store recorded them.
    fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError>;

    /// Forgets every entry and change set and merges `change_sets` instead, in one
    /// durable transaction: a machine joining a cluster takes the cluster's state, one
    /// leaving it keeps its flattened config. The clock reading stays at least what it
    /// was, so later versions from this machine stay greater than earlier ones.
    fn replace(&mut self, change_sets: Vec<ChangeSet>) -> Result<(), StoreError>;

    /// The change sets whose versions are `versions`, in that order, leaving out those
    /// this store does not hold: what replication sends a peer, found by version
    /// without reading the whole history.
    fn change_sets_of(&self, versions: &[Version]) -> Result<Vec<ChangeSet>, StoreError>;

    /// The greatest clock reading any change set carries (to restart the clock after it).
    fn last_hlc(&self) -> Result<Hlc, StoreError>;

    /// Whether writes fail, as a handle readable without this store (see [`Health`]).
    /// A store whose writes cannot fail so (the in-memory twin) never reports a failure.
    fn health(&self) -> Health {
        Health::default()
    }

    /// Tries a write that changes nothing, to learn whether writes work again after a
    /// failure [`Store::health`] reports: success clears it.
    fn probe(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The keys of `base` whose live version differs from the expected one. Pure: both store
/// implementations run it inside their commit.
pub fn check_base<'a>(base: &Base, lookup: impl Fn(&Key) -> Option<&'a Entry>) -> Vec<Conflict> {
    base.iter()
        .filter_map(|(key, expected)| {
            let found = lookup(key);
            let now = found.map(|e| &e.stamp.version);
            (now != expected.as_ref()).then(|| Conflict {
                key: key.clone(),
                expected: expected.clone(),
                found: found.map(|e| e.stamp.clone()),
                removed: found.is_some_and(|e| e.value.is_none()),
            })
        })
        .collect()
}

/// Where a write of version `version`, made by a change set with `meta`, stands among
/// the writes of one key: the greatest is live. Last writer wins — except that the revert
/// of a trial ([`crate::model::Confirm::Reverts`]) ranks just above the trial itself: it
/// beats the trial and anything before it, and loses to every write made after the
/// trial, whatever the clocks say. A total order, so every machine that holds the same
/// writes has the same live entry, in whatever order they arrived.
pub fn precedence<'a>(
    version: &'a Version,
    meta: &'a ChangeMeta,
) -> (&'a Version, bool, &'a Version) {
    match &meta.confirm {
        Some(crate::model::Confirm::Reverts { version: trial }) => (trial, true, version),
        _ => (version, false, version),
    }
}

/// What merging `cs` writes, in one pass over its writes: the keys it wins (the live
/// entry is absent or of lower [`precedence`]; in key order) and the new live entry of every key it
/// changes — its own write where it wins, the live membership with its newer facts
/// where it does not ([`facts::settle`]). Pure: both store implementations run it
/// inside their merge.
pub fn merged_entries<'a>(
    cs: &ChangeSet,
    lookup: impl Fn(&Key) -> Option<&'a Entry>,
) -> (Vec<Key>, Vec<(Key, Entry)>) {
    let mine = precedence(&cs.version, &cs.meta);
    let mut won = Vec::new();
    let mut entries = Vec::new();
    for (key, value) in &cs.writes {
        let live = lookup(key);
        let held = live.map(|e| (e, precedence(&e.stamp.version, &e.stamp.meta)));
        match held {
            Some((e, rank)) if rank >= mine => {
                // Lost: only a membership can still take the write's newer facts.
                if !matches!(e.value, Some(EntryValue::Machine(_))) {
                    continue;
                }
                let settled = facts::settle((value, mine.0), false, Some((&e.value, rank.0)));
                if settled != e.value {
                    let stamp = e.stamp.clone();
                    entries.push((
                        key.clone(),
                        Entry {
                            value: settled,
                            stamp,
                        },
                    ));
                }
            }
            _ => {
                let live = held.map(|(e, rank)| (&e.value, rank.0));
                let value = facts::settle((value, mine.0), true, live);
                won.push(key.clone());
                entries.push((
                    key.clone(),
                    Entry {
                        value,
                        stamp: cs.stamp(),
                    },
                ));
            }
        }
    }
    (won, entries)
}

/// For each key of `writes`, the version of the live entry it replaces (`None`: none).
/// Pure: both store implementations record it with a local commit.
pub fn supersedes<'a>(writes: &Writes, lookup: impl Fn(&Key) -> Option<&'a Entry>) -> Base {
    writes
        .keys()
        .map(|k| (k.clone(), lookup(k).map(|e| e.stamp.version.clone())))
        .collect()
}

/// The values every key had as of change set `at`: for each key, the write of greatest
/// version among the change sets whose version is not greater than `at`'s (tombstones
/// kept as `None`), with a member's newest facts ([`facts`]). With local commits only, that is history folded in order; with
/// merged change sets it is the same answer on every machine that has them.
pub fn state_as_of(change_sets: &[ChangeSet], at: &Version) -> Writes {
    type Rank<'a> = (&'a Version, bool, &'a Version);
    let mut state: BTreeMap<Key, (Rank<'_>, Option<EntryValue>)> = BTreeMap::new();
    for cs in change_sets.iter().filter(|cs| cs.version <= *at) {
        let rank = precedence(&cs.version, &cs.meta);
        for (k, v) in &cs.writes {
            match state.get_mut(k) {
                None => {
                    state.insert(k.clone(), (rank, v.clone()));
                }
                Some((seen, have)) => {
                    let wins = *seen < rank;
                    *have = facts::settle((v, rank.0), wins, Some((have, seen.0)));
                    if wins {
                        *seen = rank;
                    }
                }
            }
        }
    }
    state.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// The change set a user names by a prefix of its id.
pub fn find_change_set<'a>(
    change_sets: &'a [ChangeSet],
    prefix: &str,
) -> Result<&'a ChangeSet, FindError> {
    if prefix.len() < ChangeSetId::MIN_PREFIX || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FindError::Malformed(prefix.to_owned()));
    }
    let found: Vec<&ChangeSet> = change_sets
        .iter()
        .filter(|cs| cs.id().matches(prefix))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(FindError::Missing(prefix.to_owned())),
        many => Err(FindError::Ambiguous {
            prefix: prefix.to_owned(),
            ids: many.iter().map(|cs| cs.id()).collect(),
        }),
    }
}

/// No single change set has the id a user gave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    /// Not an id, nor a prefix of one.
    #[error(
        "`{0}` is not a change set id: give at least 4 hex digits, as `strata log` prints them"
    )]
    Malformed(String),
    /// No change set has it.
    #[error("there is no change set {0}")]
    Missing(String),
    /// Several do.
    #[error("`{prefix}` names several change sets: {}", .ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// What the user gave.
        prefix: String,
        /// The ids it matches.
        ids: Vec<ChangeSetId>,
    },
}

/// The current time in milliseconds since the Unix epoch (I/O edge: the one place the
/// store's callers read the clock).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
pub(crate) mod tests;
