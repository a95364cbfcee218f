//! Validated names: sections, groups and machines. Each is checked when it is built and
//! when it is deserialised, so a name that reached the store or came over the wire is
//! always one a config file could have declared.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// A name that does not follow its kind's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{shown}` is not a valid {kind} name: {rule}")]
pub struct NameError {
    /// Which kind of name (`section`, `group`, `machine`).
    pub kind: &'static str,
    /// The name, cut to a readable length.
    pub shown: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

/// The longest section name: long enough for any real one, short enough for a file name.
pub const MAX_SECTION_NAME: usize = 64;

/// The longest group or machine name: a fully qualified host name's limit.
pub const MAX_MODE_NAME: usize = 253;

/// The rule every section name follows (they become file names in the running config).
pub const SECTION_NAME_RULE: &str =
    "a letter, then letters, digits, `-` or `_`, at most 64 characters";

/// The rule every group and machine name follows.
pub const MODE_NAME_RULE: &str =
    "letters, digits, `_`, `-`, `.` and `:` (for IPv6 addresses), at most 253 characters";

fn error(kind: &'static str, name: &str, rule: &'static str) -> NameError {
    let mut shown: String = name.chars().take(80).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    NameError { kind, shown, rule }
}

/// True when `name` may name a section.
pub fn is_section_name(name: &str) -> bool {
    name.len() <= MAX_SECTION_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

/// True when `name` may name a group or a machine.
pub fn is_mode_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MODE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:literal, $check:path, $rule:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Checks `name` against the rule for this kind of name.
            pub fn new(name: impl Into<String>) -> Result<$ty, NameError> {
                let name = name.into();
                if $check(&name) {
                    Ok($ty(name))
                } else {
                    Err(error($kind, &name, $rule))
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$ty> for str {
            fn eq(&self, other: &$ty) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$ty> for &str {
            fn eq(&self, other: &$ty) -> bool {
                *self == other.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<$ty, NameError> {
                $ty::new(s)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        string_schema!($ty, $rule);

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = String::deserialize(d)?;
                $ty::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// The name of a section (`dns`, `smtp-routes`, a repo's own `web-proxy`).
    SectionName,
    "section",
    is_section_name,
    SECTION_NAME_RULE
);

name_type!(
    /// The name of a group (`Main_Group`, `Paris`).
    GroupName,
    "group",
    is_mode_name,
    MODE_NAME_RULE
);

name_type!(
    /// The name of a machine (`lab1.example.com`).
    MachineName,
    "machine",
    is_mode_name,
    MODE_NAME_RULE
);

impl GroupName {
    /// `Main_Group`, the group every machine belongs to unless it names another.
    pub fn main() -> GroupName {
        GroupName(super::MAIN_GROUP.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_when_built_and_when_deserialised() {
        assert!(SectionName::new("smtp-routes").is_ok());
        assert!(SectionName::new("xml_extra2").is_ok());
        for bad in ["", "1dns", "dns/x", "d ns", "../etc", &"a".repeat(65)] {
            assert!(SectionName::new(bad).is_err(), "{bad:?}");
        }
        assert!(MachineName::new("lab1.example.com").is_ok());
        assert!(MachineName::new("fe80::1").is_ok());
        for bad in ["", "a b", "a/b", &"m".repeat(254)] {
            assert!(MachineName::new(bad).is_err(), "{bad:?}");
            assert!(GroupName::new(bad).is_err(), "{bad:?}");
        }
        let e = SectionName::new("x".repeat(300)).unwrap_err();
        assert!(e.to_string().len() < 250, "long names are cut: {e}");

        let ok: MachineName = serde_json::from_str("\"lab1\"").unwrap();
        assert_eq!(ok, "lab1");
        assert!(serde_json::from_str::<MachineName>("\"a/b\"").is_err());
        assert!(serde_json::from_str::<SectionName>("\"\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"lab1\"");
    }
}
