//! Provenance: where a change came from, who made it, and the identity of the change set
//! it belongs to — the same on every machine of the cluster.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::hlc::Version;
use super::names::MachineName;

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// For a commit: whether the agent that accepted it vouches for it (absent in change
    /// sets recorded before it was: claimed).
    #[serde(default)]
    pub origin_kind: OriginKind,
    /// Commit confirmed (`apply --confirm-within`): a trial, a confirmation or a revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Confirm>,
    /// Staged rollout (the cluster's `rollout` section): a change set staged in waves, or
    /// a wave released, or the rollout halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// What a change set is to a staged rollout ([`crate::rollout`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Rollout {
    /// Staged: its first wave runs it at once, each later one once released.
    Staged {
        /// The waves, in order: their names and machines, resolved when it was committed.
        waves: Vec<Wave>,
        /// The pause between a wave's gate passing and the next wave's release (ms).
        pause_ms: u64,
        /// How long a wave's gate waits for its machines (ms).
        gate_timeout_ms: u64,
        /// Whether a failed gate also reverts the waves already done.
        revert_on_failure: bool,
    },
    /// Releases wave `wave` (from 0) of the staged change set `version`; writes nothing.
    Released {
        /// The staged change set.
        version: Version,
        /// The wave released.
        wave: usize,
    },
    /// Halts the staged change set `version` at wave `wave`, whose gate failed; writes
    /// nothing.
    Halted {
        /// The staged change set.
        version: Version,
        /// The wave whose gate failed.
        wave: usize,
        /// Why.
        reason: String,
    },
}

/// One wave of a staged rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Wave {
    /// Its name in the `rollout` section.
    pub name: String,
    /// Its machines.
    pub machines: Vec<MachineName>,
}

/// What a change set is to commit confirmed (`apply --confirm-within`, `strata confirm`):
/// a trial every machine reverts by its own clock unless a confirmation reaches it first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Confirm {
    /// On trial: unless a change set confirms it by this wall time (ms since the Unix
    /// epoch, by each machine's own clock), every machine reverts it.
    Trial {
        /// The deadline.
        by_ms: u64,
    },
    /// Confirms the trial change set of this version (`strata confirm`); writes nothing.
    Confirms {
        /// The trial's version.
        version: Version,
    },
    /// Reverts the trial change set of this version, unconfirmed when its time ran out:
    /// writes back the values it replaced. Its writes win over the trial's (and over
    /// other reverts of it made earlier) and lose to every write made after the trial
    /// ([`crate::state::precedence`]), so a revert undoes the trial and nothing else.
    Reverts {
        /// The trial's version.
        version: Version,
    },
}

impl ChangeMeta {
    /// The source as `log` shows it: a commit nobody vouches for is shown as claimed by
    /// the user who applied it (`git 8f2c1d0e9b7a (claimed by admin)`).
    pub fn source_shown(&self) -> String {
        match (&self.source, self.origin_kind) {
            (Source::Git { .. }, OriginKind::Claimed) => {
                format!("{} (claimed by {})", self.source, self.user)
            }
            (Source::Git { .. }, _) => format!("{} (verified)", self.source),
            (Source::Cli, _) => self.source.to_string(),
        }
    }
}

/// How far a change set's commit and author are vouched for by the agent that accepted
/// it. A client says which commit it applies; only the agent's own config repo, or its own
/// follower, can confirm it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OriginKind {
    /// Recorded as the user who applied it said (an `apply --ref` of a commit the agent's
    /// repo lacks, a saved plan), or no commit at all.
    #[default]
    Claimed,
    /// The agent's config repo held the commit, with this author and message: a push
    /// through its `pre-receive` hook, or an apply of a commit pushed before.
    Repo,
    /// The agent's own follower read it from the branch it follows.
    Follower,
}

impl OriginKind {
    /// Whether the commit is vouched for.
    pub fn verified(self) -> bool {
        self != OriginKind::Claimed
    }
}

/// The provenance every entry carries: its version (which is also the identity of the
/// change set that wrote it), the wall time and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stamp {
    /// The write's version (clock reading and origin machine).
    pub version: Version,
    /// Wall time of the write, milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// Author, host, source and message of the change set.
    pub meta: ChangeMeta,
}

impl Stamp {
    /// The change set that wrote the entry.
    pub fn change_set(&self) -> ChangeSetId {
        ChangeSetId::of(&self.version)
    }
}

/// The identity of a change set, unique across the cluster: a digest of its version
/// (clock reading and origin machine), so every machine names a change set the same way,
/// whatever order change sets reached it in. Printed short, as git prints commit ids;
/// any unique prefix of at least [`ChangeSetId::MIN_PREFIX`] digits names it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(into = "String", try_from = "String")]
pub struct ChangeSetId(String);

impl From<ChangeSetId> for String {
    fn from(id: ChangeSetId) -> String {
        id.0
    }
}

impl TryFrom<String> for ChangeSetId {
    type Error = String;

    /// Checks the form, so a garbled id from a peer can neither be shown cut in half nor
    /// taken for a real one.
    fn try_from(s: String) -> Result<ChangeSetId, String> {
        if s.len() == Self::LEN
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            Ok(ChangeSetId(s))
        } else {
            Err(format!(
                "`{}` is not a change set id",
                s.chars().take(40).collect::<String>()
            ))
        }
    }
}

impl ChangeSetId {
    /// How many hex digits the full id has.
    pub const LEN: usize = 16;
    /// How many digits the short form shows.
    pub const SHORT: usize = 10;
    /// The shortest prefix accepted to name a change set.
    pub const MIN_PREFIX: usize = 4;

    /// The id of the change set whose writes carry `version`.
    pub fn of(version: &Version) -> ChangeSetId {
        let mut hash = Sha256::new();
        hash.update(version.hlc.0.to_be_bytes());
        hash.update(version.origin.as_bytes());
        let digest = hash.finalize();
        ChangeSetId(hex::encode(&digest[..Self::LEN / 2]))
    }

    /// The id as a number: the first 64 bits of the digest, for order-independent
    /// combinations of many ids (replication's summaries).
    pub fn bits(&self) -> u64 {
        // Every id is 16 lowercase hex digits (checked in `of` and on deserialising).
        u64::from_str_radix(&self.0, 16).unwrap_or_default()
    }

    /// The full id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The short form, for people.
    pub fn short(&self) -> &str {
        &self.0[..Self::SHORT.min(self.0.len())]
    }

    /// True when `prefix` (at least [`Self::MIN_PREFIX`] hex digits) names this id.
    pub fn matches(&self, prefix: &str) -> bool {
        prefix.len() >= Self::MIN_PREFIX && self.0.starts_with(&prefix.to_ascii_lowercase())
    }
}

impl fmt::Display for ChangeSetId {
    /// The short form; `{:#}` prints the full id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.write_str(&self.0)
        } else {
            f.write_str(self.short())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Hlc, MachineName};

    fn version(ms: u64, origin: &str) -> Version {
        Version {
            hlc: Hlc::new(ms, 0),
            origin: MachineName::new(origin).unwrap(),
        }
    }

    #[test]
    fn a_change_set_id_is_a_digest_of_its_version() {
        let a = ChangeSetId::of(&version(1_000, "lab1"));
        assert_eq!(a, ChangeSetId::of(&version(1_000, "lab1")));
        assert_ne!(a, ChangeSetId::of(&version(1_000, "lab2")));
        assert_ne!(a, ChangeSetId::of(&version(1_001, "lab1")));
        assert_eq!(a.as_str().len(), ChangeSetId::LEN);
        assert_eq!(format!("{:016x}", a.bits()), a.as_str());
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a.to_string().len(), ChangeSetId::SHORT);
        assert_eq!(format!("{a:#}"), a.as_str());
        assert!(a.matches(&a.as_str()[..4]));
        assert!(a.matches(&a.as_str().to_ascii_uppercase()[..6]));
        assert!(!a.matches(&a.as_str()[..3]), "too short to name anything");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<ChangeSetId>(&json).unwrap(), a);
        for bad in ["\"abc\"", "\"ééééééééé\"", "\"0123456789ABCDEF\""] {
            assert!(serde_json::from_str::<ChangeSetId>(bad).is_err(), "{bad}");
        }
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
}
