//! The durable store: every entry an agent holds, with its version and provenance, and
//! the history of change sets that wrote them.
//!
//! An entry is a [`Key`] (a section at a mode, or a piece of membership) with a value —
//! canonical KDL text — or a tombstone (`None`) when the section was removed, so that
//! "no settings" is recorded as firmly as settings are. Every write belongs to exactly one
//! [`ChangeSet`]; a change set is committed atomically and durably, after checking that
//! the entries it was computed against have not changed since (the seed's commit-time
//! conflict check). History is append-only: rollback writes a new change set.
//!
//! [`Store`] is the small trait; [`DiskStore`] (redb) is the real one and
//! [`MemoryStore`] its in-memory twin for tests.

mod disk;
mod hlc;
mod key;
mod memory;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use disk::DiskStore;
pub use hlc::{Clock, ClockSkew, Hlc, Version};
pub use key::{Key, KeyParseError};
pub use memory::MemoryStore;

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A commit of the config repo.
    Git {
        /// The full commit id.
        commit: String,
    },
    /// A command run without a commit behind it (a working tree, `cluster create`,
    /// `rollback`).
    Cli,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The commit id arrives from clients and saved plans: cut at a character,
            // never at a byte, so a malformed id cannot panic the agent.
            Source::Git { commit } => {
                let short: String = commit.chars().take(12).collect();
                write!(f, "git {short}")
            }
            Source::Cli => f.write_str("cli"),
        }
    }
}

/// Who made a change set, from where, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeMeta {
    /// The author: the git commit's author, else the SSH user.
    pub author: String,
    /// The SSH user that committed it to the agent.
    pub user: String,
    /// The machine (agent) that accepted the change set.
    pub host: String,
    /// A git commit or the CLI.
    pub source: Source,
    /// The commit message, or what the command did.
    pub message: String,
}

/// The provenance every entry carries: its version and the change set that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The write's version (clock reading and origin machine).
    pub version: Version,
    /// Wall time of the write, milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// The change set that wrote it.
    pub change_set: u64,
    /// Author, host, source and message of that change set.
    pub meta: ChangeMeta,
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Canonical KDL text, or `None` for a tombstone (removed).
    pub value: Option<String>,
    /// Version and provenance of the last write.
    pub stamp: Stamp,
}

/// Every entry of a store, tombstones included.
pub type Live = BTreeMap<Key, Entry>;

/// The version a plan saw for each key it writes (`None`: the key did not exist).
pub type Base = BTreeMap<Key, Option<Version>>;

/// A change set to commit: writes, the base they were computed against, provenance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal {
    /// Key → new value (`None` writes a tombstone).
    pub writes: BTreeMap<Key, Option<String>>,
    /// What the live entries were when the writes were computed.
    pub base: Base,
    /// Author, source, message.
    pub meta: ChangeMeta,
    /// The version every write gets.
    pub version: Version,
    /// Wall time, milliseconds since the Unix epoch.
    pub wall_ms: u64,
}

/// A committed change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    /// Sequence number in this store, from 1.
    pub id: u64,
    /// The version of every write in it.
    pub version: Version,
    /// Wall time of the commit.
    pub wall_ms: u64,
    /// Author, source, message.
    pub meta: ChangeMeta,
    /// What it wrote.
    pub writes: BTreeMap<Key, Option<String>>,
}

/// A change set without its values, for `strata log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSetSummary {
    /// Sequence number.
    pub id: u64,
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
    /// This change set without its values.
    pub fn summary(&self) -> ChangeSetSummary {
        ChangeSetSummary {
            id: self.id,
            version: self.version.clone(),
            wall_ms: self.wall_ms,
            meta: self.meta.clone(),
            keys: self.writes.keys().cloned().collect(),
        }
    }
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
                s.change_set,
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
}

/// A commit was not made.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CommitError {
    /// The entries the proposal was computed against changed since.
    #[error("the plan is stale: {} entries changed since it was computed", .0.len())]
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

/// Durable storage of entries and change sets. Implementations commit atomically: after a
/// crash at any point, a store holds either all of a change set or none of it.
pub trait Store {
    /// Every entry, tombstones included.
    fn live(&self) -> Result<Live, StoreError>;

    /// Checks `proposal.base` against the live entries and, if none changed, writes every
    /// entry and the change set in one durable transaction. Returns the change set.
    fn commit(&mut self, proposal: Proposal) -> Result<ChangeSet, CommitError>;

    /// Every change set, oldest first.
    fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError>;

    /// The greatest clock reading any entry carries (to restart the clock after it).
    fn last_hlc(&self) -> Result<Hlc, StoreError>;
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

/// The values every key had right after change set `id`: the writes of change sets
/// `1..=id` folded in order (tombstones kept as `None`).
pub fn state_as_of(change_sets: &[ChangeSet], id: u64) -> BTreeMap<Key, Option<String>> {
    let mut state = BTreeMap::new();
    for cs in change_sets.iter().filter(|cs| cs.id <= id) {
        for (k, v) in &cs.writes {
            state.insert(k.clone(), v.clone());
        }
    }
    state
}

/// The current time in milliseconds since the Unix epoch (I/O edge: the one place the
/// store's callers read the clock).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn meta(author: &str) -> ChangeMeta {
        ChangeMeta {
            author: author.into(),
            user: author.into(),
            host: "lab1".into(),
            source: Source::Cli,
            message: "test".into(),
        }
    }

    pub fn proposal(hlc: u64, writes: &[(&str, Option<&str>)], base: Base) -> Proposal {
        Proposal {
            writes: writes
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.map(str::to_owned)))
                .collect(),
            base,
            meta: meta("alice"),
            version: Version {
                hlc: Hlc::new(hlc, 0),
                origin: "lab1".into(),
            },
            wall_ms: hlc,
        }
    }

    /// The behaviour every store must have, run against each implementation.
    pub fn store_contract(store: &mut dyn Store) {
        assert!(store.live().unwrap().is_empty());
        let dns: Key = "cluster/dns".parse().unwrap();
        let base: Base = [(dns.clone(), None)].into();
        let cs = store
            .commit(proposal(
                10,
                &[
                    ("cluster/dns", Some("dns\n")),
                    ("@cluster", Some("cluster \"a\"\n")),
                ],
                base,
            ))
            .unwrap();
        assert_eq!(cs.id, 1);
        let live = store.live().unwrap();
        assert_eq!(live[&dns].value.as_deref(), Some("dns\n"));
        assert_eq!(live[&dns].stamp.change_set, 1);

        // A proposal computed before change set 1 is stale and writes nothing.
        let stale = store.commit(proposal(
            20,
            &[("cluster/dns", Some("x\n"))],
            [(dns.clone(), None)].into(),
        ));
        let CommitError::Stale(conflicts) = stale.unwrap_err() else {
            panic!("not stale")
        };
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].found.as_ref().unwrap().change_set, 1);
        assert!(
            conflicts[0]
                .to_string()
                .contains("cluster/dns was created by alice")
        );
        assert_eq!(store.live().unwrap()[&dns].value.as_deref(), Some("dns\n"));

        // Against the right base it commits; a tombstone is kept as an entry.
        let v1 = store.live().unwrap()[&dns].stamp.version.clone();
        let cs = store
            .commit(proposal(
                30,
                &[("cluster/dns", None)],
                [(dns.clone(), Some(v1))].into(),
            ))
            .unwrap();
        assert_eq!(cs.id, 2);
        assert_eq!(store.live().unwrap()[&dns].value, None);

        // A plan that saw the value, applied after the removal, says it was removed.
        let stale = store.commit(proposal(
            31,
            &[("cluster/dns", Some("dns { server x; }\n"))],
            [(
                dns.clone(),
                Some(Version {
                    hlc: Hlc::new(10, 0),
                    origin: "lab1".into(),
                }),
            )]
            .into(),
        ));
        let CommitError::Stale(conflicts) = stale.unwrap_err() else {
            panic!("not stale")
        };
        assert_eq!(
            conflicts[0].to_string(),
            "cluster/dns was removed by alice on lab1 in change set 2 (cli)"
        );
        assert_eq!(store.last_hlc().unwrap(), Hlc::new(30, 0));

        let sets = store.change_sets().unwrap();
        assert_eq!(sets.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(state_as_of(&sets, 1)[&dns].as_deref(), Some("dns\n"));
        assert_eq!(state_as_of(&sets, 2)[&dns], None);
    }

    #[test]
    fn a_commit_id_of_any_text_displays_without_panicking() {
        let source = |commit: &str| {
            Source::Git {
                commit: commit.into(),
            }
            .to_string()
        };
        assert_eq!(source("0123456789abcdef"), "git 0123456789ab");
        assert_eq!(source("abc"), "git abc");
        // Byte 12 falls inside an `é`.
        let odd = format!("a{}", "é".repeat(20));
        assert_eq!(source(&odd), format!("git a{}", "é".repeat(11)));
    }

    #[test]
    fn the_memory_store_keeps_the_contract() {
        store_contract(&mut MemoryStore::default());
    }
}
