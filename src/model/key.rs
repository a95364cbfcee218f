//! Entry keys: a piece of membership (the cluster, a group, a machine), the catalogue a
//! cluster runs with (which built-in sections, and the repo's own section schemas), or a
//! section at a mode. Keys have one stable text form, used in the store, in messages and
//! in saved plans, and every name in a key is validated.

use std::fmt;
use std::str::FromStr;

use super::names::{GroupName, MachineName, SectionName};
use crate::model::Mode;

/// What an entry is about.
///
/// Sorted membership first (cluster, groups, machines), then the catalogue, then sections
/// by mode and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// The cluster itself; its value names it (`cluster "americas"`).
    Cluster,
    /// A group of the cluster (`group "Paris"`).
    Group(GroupName),
    /// A machine of the cluster, with its group and address
    /// (`machine "lab1" group="Main_Group" address="10.1.0.1"`).
    Machine(MachineName),
    /// A machine registered to join with a pre-shared host key
    /// (`strata cluster prepjoin add`); replicated like membership, never in a repo.
    Pending(MachineName),
    /// One of the cluster's age identities, named by its id (the first 16 hex digits
    /// of the SHA-256 of its recipient), with which members decrypt the repo's secrets
    /// ([`crate::secret::identity`]); replicated like membership, never in a repo, never
    /// sent to a client.
    Identity(String),
    /// Which built-in sections the cluster uses; absent: all of them.
    Catalogue,
    /// The schema of a section the config repo defines itself (or redefines).
    Schema(SectionName),
    /// A section defined at a mode.
    Section {
        /// Where the section is defined.
        mode: Mode,
        /// The section's name.
        section: SectionName,
    },
}

impl Key {
    /// The key of `section` at `mode`.
    pub fn section(mode: Mode, section: SectionName) -> Key {
        Key::Section { mode, section }
    }

    /// True for the cluster, group and machine entries, and machines waiting to join:
    /// what only administrators may change.
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            Key::Cluster | Key::Group(_) | Key::Machine(_) | Key::Pending(_)
        )
    }

    /// True for what a config repo declares. The pending-join list is the mesh's own and
    /// the identities the cluster's: a plan neither shows nor removes them.
    pub fn is_declared_by_repos(&self) -> bool {
        !matches!(self, Key::Pending(_) | Key::Identity(_))
    }

    /// True for the cluster's secret state (its identities): kept from clients and
    /// rollbacks.
    pub fn is_secret(&self) -> bool {
        matches!(self, Key::Identity(_))
    }

    /// The key of the identity `id`, if `id` is one (1 to 32 lowercase hex digits).
    pub fn identity(id: &str) -> Option<Key> {
        let ok = (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Key::Identity(id.to_owned()))
    }
}

impl fmt::Display for Key {
    /// `cluster/dns`, `group:Paris/dns`, `machine:lab1/interfaces` for sections;
    /// `@cluster`, `@group:Paris`, `@machine:lab1` for membership; `#catalogue` and
    /// `#schema:web-proxy` for the catalogue.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Cluster => f.write_str("@cluster"),
            Key::Group(g) => write!(f, "@group:{g}"),
            Key::Machine(m) => write!(f, "@machine:{m}"),
            Key::Pending(m) => write!(f, "@prepjoin:{m}"),
            Key::Identity(id) => write!(f, "@identity:{id}"),
            Key::Catalogue => f.write_str("#catalogue"),
            Key::Schema(s) => write!(f, "#schema:{s}"),
            Key::Section { mode, section } => write!(f, "{mode}/{section}"),
        }
    }
}

/// A key's text form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an entry key")]
pub struct KeyParseError(pub String);

impl FromStr for Key {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Key, KeyParseError> {
        let bad = || KeyParseError(s.to_owned());
        if s == "#catalogue" {
            return Ok(Key::Catalogue);
        }
        if let Some(name) = s.strip_prefix("#schema:") {
            return SectionName::new(name).map(Key::Schema).map_err(|_| bad());
        }
        if let Some(id) = s.strip_prefix("@identity:") {
            return Key::identity(id).ok_or_else(bad);
        }
        if let Some(name) = s.strip_prefix("@prepjoin:") {
            return MachineName::new(name).map(Key::Pending).map_err(|_| bad());
        }
        if let Some(member) = s.strip_prefix('@') {
            return match member.parse::<Mode>().map_err(|_| bad())? {
                Mode::Cluster => Ok(Key::Cluster),
                Mode::Group(g) => Ok(Key::Group(g)),
                Mode::Machine(m) => Ok(Key::Machine(m)),
            };
        }
        // Section names never contain '/', mode names might: split at the last one.
        let (mode, section) = s.rsplit_once('/').ok_or_else(bad)?;
        let section = SectionName::new(section).map_err(|_| bad())?;
        Ok(Key::section(mode.parse().map_err(|_| bad())?, section))
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

string_schema!(
    Key,
    "What an entry is about: `cluster`, `group:NAME`, `machine:NAME`, `MODE/SECTION`, or an entry of the cluster's own (`@…`, `#…`)"
);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text() {
        for text in [
            "@cluster",
            "@group:Paris",
            "@machine:lab1.example.com",
            "@prepjoin:lab6.example.com",
            "@identity:0123456789abcdef",
            "cluster/dns",
            "group:Paris/ldap-queries",
            "machine:lab1.example.com/interfaces",
            "#catalogue",
            "#schema:web-proxy",
        ] {
            let key: Key = text.parse().unwrap();
            assert_eq!(key.to_string(), text);
        }
        for bad in [
            "",
            "dns",
            "cluster/",
            "@nope",
            "team:x/dns",
            "cluster/a b",
            "group:a b/dns",
            "#schema:",
            "#nope",
        ] {
            assert!(bad.parse::<Key>().is_err(), "{bad}");
        }
    }

    #[test]
    fn membership_sorts_before_sections() {
        let mut keys: Vec<Key> = [
            "cluster/dns",
            "#schema:x",
            "@machine:a",
            "@cluster",
            "@group:G",
        ]
        .iter()
        .map(|k| k.parse().unwrap())
        .collect();
        keys.sort();
        let texts: Vec<String> = keys.iter().map(Key::to_string).collect();
        assert_eq!(
            texts,
            [
                "@cluster",
                "@group:G",
                "@machine:a",
                "#schema:x",
                "cluster/dns"
            ]
        );
    }
}
