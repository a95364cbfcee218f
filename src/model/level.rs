//! Levels (cluster, group, machine) and modes (a named member of a level).

use std::fmt;

use super::names::{GroupName, MachineName};

/// The three configuration levels, **in order of precedence**: a later level overrides an
/// earlier one (`Cluster < Group < Machine`).
///
/// Override is whole-section: when a machine defines a section, nothing of the group's or
/// the cluster's version of that section reaches the machine. A mode that defines a section
/// with no content (`dns {}` or a bare `dns`) overrides with nothing — that is the seed's
/// "empty settings", distinct from "no settings" (no node at all), which inherits. There is
/// no tombstone notation in the files: to inherit again, delete the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Settings shared by every machine; the one cluster mode.
    Cluster,
    /// Settings shared by the machines of one group.
    Group,
    /// Settings of one machine.
    Machine,
}

impl Level {
    /// Every level, from the lowest precedence to the highest.
    pub const ALL: [Level; 3] = [Level::Cluster, Level::Group, Level::Machine];

    /// The keyword used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Cluster => "cluster",
            Level::Group => "group",
            Level::Machine => "machine",
        }
    }

    /// Parses the keyword used in files and on the command line.
    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named member of a level: where a section can be defined.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// The cluster mode (there is exactly one).
    Cluster,
    /// The mode of one group, by name.
    Group(GroupName),
    /// The mode of one machine, by name.
    Machine(MachineName),
}

impl Mode {
    /// The level this mode belongs to.
    pub fn level(&self) -> Level {
        match self {
            Mode::Cluster => Level::Cluster,
            Mode::Group(_) => Level::Group,
            Mode::Machine(_) => Level::Machine,
        }
    }

    /// The group or machine name; `None` for the cluster mode.
    pub fn name(&self) -> Option<&str> {
        match self {
            Mode::Cluster => None,
            Mode::Group(n) => Some(n.as_str()),
            Mode::Machine(n) => Some(n.as_str()),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Cluster => f.write_str("cluster"),
            Mode::Group(n) => write!(f, "group:{n}"),
            Mode::Machine(n) => write!(f, "machine:{n}"),
        }
    }
}

impl serde::Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

string_schema!(Mode, "A mode: `cluster`, `group:NAME` or `machine:NAME`");

impl<'de> serde::Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A mode written on the command line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeParseError {
    /// Not of the form `cluster`, `group:NAME` or `machine:NAME`.
    #[error("`{0}` is not a mode: write `cluster`, `group:NAME` or `machine:NAME`")]
    Form(String),
    /// The form is right, the name is not.
    #[error(transparent)]
    Name(#[from] super::names::NameError),
}

impl std::str::FromStr for Mode {
    type Err = ModeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModeParseError::Form(s.to_owned());
        if s == "cluster" {
            return Ok(Mode::Cluster);
        }
        let (level, name) = s.split_once(':').ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        match level {
            "group" => Ok(Mode::Group(GroupName::new(name)?)),
            "machine" => Ok(Mode::Machine(MachineName::new(name)?)),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_by_precedence() {
        assert!(Level::Cluster < Level::Group && Level::Group < Level::Machine);
    }

    #[test]
    fn modes_round_trip_through_text() {
        for text in ["cluster", "group:Paris", "machine:lab1.example.com"] {
            let mode: Mode = text.parse().unwrap();
            assert_eq!(mode.to_string(), text);
        }
        assert!("group:".parse::<Mode>().is_err());
        assert!("paris".parse::<Mode>().is_err());
        assert!("team:x".parse::<Mode>().is_err());
        assert!(matches!(
            "group:a b".parse::<Mode>(),
            Err(ModeParseError::Name(_))
        ));
    }
}
