//! Typed entry values: what the store holds under each [`Key`] and what travels between
//! CLI and agents (and, next, between peers). A value is membership, the catalogue
//! selection, a section schema, or a section node — never text to be parsed again.
//! [`EntryDigest`] names a value by its content, so two sides can tell which values
//! differ without sending them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::names::{GroupName, MachineName, SectionName};
use super::{Key, Node, Value};

/// A machine's membership: its group, how peers reach it, and what the mesh learns of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The machine's group.
    pub group: GroupName,
    /// The address peers and operators reach it at.
    pub address: String,
    /// Its SSH host key (OpenSSH public-key line), once it has joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Its serial number, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Where its agent takes peer connections (`host:port`), as it said when it joined;
    /// `address` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Detached from the mesh by `strata cluster disconnect` until reconnected: it keeps
    /// running its last config, and no peer links to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disconnected: bool,
    /// A config repo declares the machine (an apply from git wrote it so): joined, it is
    /// managed; not joined, expected. A member no repo declares is unmanaged once a repo
    /// drives the cluster. Git owns it, as it owns the group and the address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub declared: bool,
    /// The Strata version its agent runs, as the agent last said (when it joined, or
    /// started since): what the version rule compares ([`crate::protocol::version`]).
    /// Unknown until then. The cluster's fact, never a repo's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strata_version: Option<String>,
    /// The version of the appliance it manages (AsyncOS `15.0.1-416`), as its agent's
    /// `agent.kdl` says (`appliance-version`); unknown when it says none. The cluster's
    /// fact, as the agent reports it; a repo records its own for `validate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance_version: Option<String>,
    /// What a repo's `was="OLD"` says of a machine it declares: its name before a rename
    /// (`cluster::rename`). Only ever in the desired entries a plan is made from: a plan
    /// takes OLD's membership facts for the new name ([`crate::plan::ownership`]), and
    /// the value it writes has none; never stored, sent or digested.
    #[serde(skip)]
    pub was: Option<Box<MachineName>>,
    /// The version of the write that last changed the mesh's facts of the machine (host
    /// key, peer address, disconnected, the versions its agent reports): they merge on
    /// this clock, apart from the rest of the entry ([`crate::state::facts`]). Set by the
    /// store when it commits; `None` before any was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts_at: Option<Box<crate::model::Version>>,
}

/// The mesh's facts of a machine, as [`Membership::facts`] gives them: host key, peer
/// address, disconnected, Strata version, appliance version.
pub type Facts<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    bool,
    Option<&'a str>,
    Option<&'a str>,
);

impl Membership {
    /// A machine a repo declares and that has not joined (no host key yet).
    pub fn declared(group: GroupName, address: &str, serial: Option<String>) -> Membership {
        Membership {
            group,
            address: address.to_owned(),
            host_key: None,
            serial,
            peer: None,
            disconnected: false,
            declared: true,
            strata_version: None,
            appliance_version: None,
            was: None,
            facts_at: None,
        }
    }

    /// A machine no repo declares (yet): a cluster's creator, a joiner. `address` is
    /// split as [`Membership::peer`] says when it carries a port: `10.0.0.1:2222` is the
    /// address `10.0.0.1`, dialled at that port.
    pub fn undeclared(group: GroupName, address: &str) -> Membership {
        let (address, peer) = match crate::model::split_port(address) {
            Some((host, _)) => (host.to_owned(), Some(address.to_owned())),
            None => (address.to_owned(), None),
        };
        Membership {
            group,
            address,
            host_key: None,
            serial: None,
            peer,
            disconnected: false,
            declared: false,
            strata_version: None,
            appliance_version: None,
            was: None,
            facts_at: None,
        }
    }

    /// True once the machine has joined: the mesh knows its host key.
    pub fn joined(&self) -> bool {
        self.host_key.is_some()
    }

    /// Where peers dial its agent: what it said when joining, else its address.
    pub fn peer_address(&self) -> &str {
        self.peer.as_deref().unwrap_or(&self.address)
    }

    /// What a config repo says of the machine (group, address, serial), with what the
    /// mesh learnt of it (host key, peer address, disconnected, the Strata and appliance
    /// versions its agent reports) taken from `live`: a repo never declares those, so
    /// applying it keeps them.
    pub fn with_mesh_facts_of(mut self, live: &Membership) -> Membership {
        if self.serial.is_none() {
            self.serial = live.serial.clone();
        }
        self.with_facts_of(live)
    }

    /// This entry with the mesh's facts of the machine — host key, peer address,
    /// disconnected, the versions its agent reports, and their stamp — taken from `other`:
    /// what [`crate::state::facts`] merges apart from the rest.
    pub fn with_facts_of(mut self, other: &Membership) -> Membership {
        self.host_key = other.host_key.clone();
        self.peer = other.peer.clone();
        self.disconnected = other.disconnected;
        self.strata_version = other.strata_version.clone();
        self.appliance_version = other.appliance_version.clone();
        self.facts_at = other.facts_at.clone();
        self
    }

    /// The facts of a machine that has not joined ([`Membership::facts`]).
    pub const NO_FACTS: Facts<'static> = (None, None, false, None, None);

    /// This entry without the mesh's facts of the machine, stamped `at` (a removal's
    /// version, or none: [`crate::state::facts`]).
    pub fn without_facts(self, at: Option<&crate::model::Version>) -> Membership {
        let none = Membership {
            facts_at: at.cloned().map(Box::new),
            ..Membership::declared(self.group.clone(), &self.address, None)
        };
        self.with_facts_of(&none)
    }

    /// The mesh's facts of the machine, as [`Membership::with_facts_of`] takes them
    /// (without their stamp): what a write compares to tell whether it changes them.
    pub fn facts(&self) -> Facts<'_> {
        (
            self.host_key.as_deref(),
            self.peer.as_deref(),
            self.disconnected,
            self.strata_version.as_deref(),
            self.appliance_version.as_deref(),
        )
    }
}

/// A machine registered with `strata cluster prepjoin add` to join with its host key
/// instead of the admin passphrase ([`Key::Pending`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJoin {
    /// The serial number it must present.
    pub serial: String,
    /// Its SSH host key (OpenSSH public-key line).
    pub host_key: String,
}

/// One of the cluster's age identities ([`Key::Identity`]): what members decrypt the
/// repo's secrets with. Its secret half travels only between members (replication, a
/// join's snapshot) and to the store; never to a client, never in a message or a log
/// (`Debug` and [`EntryValue::to_node`] leave it out).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    /// The public recipient (`age1…`) values are encrypted to.
    pub recipient: String,
    /// The secret key (`AGE-SECRET-KEY-1…`).
    pub secret: String,
    /// When it was made (ms since the epoch): the newest is the one to encrypt to.
    pub created_ms: u64,
}

impl std::fmt::Debug for ClusterIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterIdentity")
            .field("recipient", &self.recipient)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// Which built-in sections a cluster uses. Recorded only when the repo restricts them;
/// no entry means every built-in section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueSpec {
    /// The built-in sections in use (possibly none), sorted.
    pub builtin: Vec<SectionName>,
}

/// The digest of an entry value: the first 128 bits of the SHA-256 of its encoding (the
/// one the store and the wire share, [`crate::model::ENCODING`]), written as 32 hex
/// digits. Equal values have equal digests on every machine; a plan trusts the converse
/// (a collision is a 2^-64 chance even among billions of entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryDigest([u8; 16]);

impl std::fmt::Display for EntryDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::str::FromStr for EntryDigest {
    type Err = String;

    fn from_str(text: &str) -> Result<EntryDigest, String> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| format!("`{text}` is not an entry digest (32 hex digits)"))?;
        Ok(EntryDigest(bytes))
    }
}

impl Serialize for EntryDigest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntryDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EntryDigest, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Feeds what serde_json writes straight into the hash: no buffer per value.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The value of one entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryValue {
    /// The cluster and its name ([`Key::Cluster`]).
    Cluster {
        /// The cluster's name.
        name: String,
    },
    /// A group exists ([`Key::Group`]).
    Group,
    /// A machine is a member ([`Key::Machine`]).
    Machine(Membership),
    /// A machine may join with its pre-shared host key ([`Key::Pending`]).
    Pending(PendingJoin),
    /// One of the cluster's identities ([`Key::Identity`]).
    Identity(ClusterIdentity),
    /// The built-in sections in use ([`Key::Catalogue`]).
    Catalogue(CatalogueSpec),
    /// A section schema: the `section "NAME" { … }` node ([`Key::Schema`]).
    Schema(Node),
    /// A section's contents: the section node ([`Key::Section`]).
    Section(Node),
}

impl EntryValue {
    /// The digest of this value ([`EntryDigest`]): the one function by which agents and
    /// the CLI tell which values differ.
    pub fn digest(&self) -> EntryDigest {
        let mut hash = HashWriter(Sha256::new());
        // Writing to a hash cannot fail, and every value encodes (the store holds them so).
        serde_json::to_writer(&mut hash, self).expect("an entry value always encodes");
        let full = hash.0.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&full[..16]);
        EntryDigest(bytes)
    }

    /// The node of a section or schema entry.
    pub fn node(&self) -> Option<&Node> {
        match self {
            EntryValue::Section(n) | EntryValue::Schema(n) => Some(n),
            _ => None,
        }
    }

    /// Why this value cannot be stored under `key`, if it cannot: the kinds must match,
    /// and a section or schema node must be named as its key says.
    pub fn misfit(&self, key: &Key) -> Option<String> {
        let want = match key {
            Key::Cluster => "cluster",
            Key::Group(_) => "group",
            Key::Machine(_) => "machine",
            Key::Pending(_) => "prepjoin",
            Key::Identity(_) => "identity",
            Key::Catalogue => "catalogue",
            Key::Schema(_) => "schema",
            Key::Section { .. } => "section",
        };
        let ok = match (key, self) {
            (Key::Cluster, EntryValue::Cluster { name }) => !name.is_empty(),
            (Key::Group(_), EntryValue::Group)
            | (Key::Machine(_), EntryValue::Machine(_))
            | (Key::Pending(_), EntryValue::Pending(_))
            | (Key::Identity(_), EntryValue::Identity(_))
            | (Key::Catalogue, EntryValue::Catalogue(_)) => true,
            (Key::Schema(s), EntryValue::Schema(n)) => {
                n.name == "section" && n.args.first().and_then(Value::as_str) == Some(s.as_str())
            }
            (Key::Section { section, .. }, EntryValue::Section(n)) => n.name == section.as_str(),
            _ => false,
        };
        (!ok).then(|| match self.node() {
            Some(n) if want == self.kind() => {
                format!("the value for {key} is a `{}` node", n.name)
            }
            _ => format!(
                "the value for {key} must be a {want} entry, not a {}",
                self.kind()
            ),
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            EntryValue::Cluster { .. } => "cluster",
            EntryValue::Group => "group",
            EntryValue::Machine(_) => "machine",
            EntryValue::Pending(_) => "prepjoin",
            EntryValue::Identity(_) => "identity",
            EntryValue::Catalogue(_) => "catalogue",
            EntryValue::Schema(_) => "schema",
            EntryValue::Section(_) => "section",
        }
    }

    /// The value as one KDL node, as a config repo would write it: what plans diff and
    /// show (`machine "lab3" address="10.1.0.3" group="Paris"`, `dns { … }`).
    pub fn to_node(&self, key: &Key) -> Node {
        let named = |kind: &str, name: &str| {
            let mut n = Node::new(kind);
            n.args.push(Value::String(name.to_owned()));
            n
        };
        match (self, key) {
            (EntryValue::Cluster { name }, _) => named("cluster", name),
            (EntryValue::Group, Key::Group(g)) => named("group", g),
            (EntryValue::Machine(m), Key::Machine(name)) => {
                let mut n = named("machine", name);
                let optional = [
                    ("host-key", &m.host_key),
                    ("serial", &m.serial),
                    ("peer", &m.peer),
                    ("strata-version", &m.strata_version),
                    ("appliance-version", &m.appliance_version),
                ];
                let mut props: Vec<(&str, String)> = optional
                    .into_iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
                    .collect();
                if m.disconnected {
                    props.push(("disconnected", "true".to_owned()));
                }
                if m.declared {
                    props.push(("declared", "true".to_owned()));
                }
                props.push(("address", m.address.clone()));
                props.push(("group", m.group.to_string()));
                props.sort();
                n.props = props
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v)))
                    .collect();
                n
            }
            (EntryValue::Pending(p), Key::Pending(name)) => {
                let mut n = named("prepjoin", name);
                n.props = vec![
                    ("host-key".to_owned(), Value::String(p.host_key.clone())),
                    ("serial".to_owned(), Value::String(p.serial.clone())),
                ];
                n
            }
            // The recipient only: the secret key is never shown.
            (EntryValue::Identity(i), Key::Identity(id)) => {
                let mut n = named("identity", id);
                n.props = vec![("recipient".to_owned(), Value::String(i.recipient.clone()))];
                n
            }
            (EntryValue::Catalogue(c), _) => {
                let mut n = Node::new("builtin-sections");
                n.args = c
                    .builtin
                    .iter()
                    .map(|s| Value::String(s.to_string()))
                    .collect();
                n
            }
            (EntryValue::Schema(n) | EntryValue::Section(n), _) => n.clone(),
            // A value under the wrong key (refused before it is stored): show its kind.
            (other, _) => Node::new(other.kind()),
        }
    }

    /// Canonical KDL text of [`Self::to_node`].
    pub fn to_text(&self, key: &Key) -> String {
        self.to_node(key).to_canonical()
    }

    /// Reads a value from its KDL node (the store format before typed entries, where
    /// every value was canonical KDL: [`crate::config::value_from_text`] parses it).
    pub fn from_node(key: &Key, node: Node) -> Result<EntryValue, String> {
        let string = |name: &str| node.prop(name).and_then(Value::as_str).map(str::to_owned);
        let value = match key {
            Key::Cluster => EntryValue::Cluster {
                name: node
                    .args
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            },
            Key::Group(_) => EntryValue::Group,
            Key::Machine(m) => EntryValue::Machine(Membership {
                group: match string("group") {
                    Some(g) => GroupName::new(g).map_err(|e| e.to_string())?,
                    None => GroupName::main(),
                },
                address: string("address").unwrap_or_else(|| m.to_string()),
                host_key: string("host-key"),
                serial: string("serial"),
                peer: string("peer"),
                disconnected: string("disconnected").as_deref() == Some("true"),
                declared: string("declared").as_deref() == Some("true"),
                strata_version: string("strata-version"),
                appliance_version: string("appliance-version"),
                was: None,
                facts_at: None,
            }),
            Key::Pending(_) => EntryValue::Pending(PendingJoin {
                serial: string("serial").unwrap_or_default(),
                host_key: string("host-key").unwrap_or_default(),
            }),
            // Never written as text (the secret is not in it): there is nothing to read.
            Key::Identity(_) => return Err(format!("the value for {key} has no text form")),
            Key::Catalogue => EntryValue::Catalogue(CatalogueSpec {
                builtin: node
                    .args
                    .iter()
                    .filter_map(Value::as_str)
                    .map(SectionName::new)
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?,
            }),
            Key::Schema(_) => EntryValue::Schema(node),
            Key::Section { .. } => EntryValue::Section(node),
        };
        match value.misfit(key) {
            Some(why) => Err(why),
            None => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Key {
        text.parse().unwrap()
    }

    #[test]
    fn values_read_from_text_show_as_they_were_written() {
        for (k, text) in [
            ("@cluster", "cluster americas\n"),
            ("@group:Paris", "group Paris\n"),
            (
                "@machine:lab3",
                "machine lab3 address=\"10.1.0.3\" group=Paris\n",
            ),
            (
                "@machine:lab4",
                "machine lab4 address=\"10.1.0.4\" appliance-version=\"15.0.1-416\" group=Paris strata-version=\"0.1.0\"\n",
            ),
            ("#catalogue", "builtin-sections dns interfaces\n"),
            ("cluster/dns", "dns {\n    server \"10.0.0.53\"\n}\n"),
            (
                "#schema:web-proxy",
                "section web-proxy {\n    levels cluster\n}\n",
            ),
        ] {
            let value = crate::config::value_from_text(&key(k), text).unwrap();
            assert_eq!(value.to_text(&key(k)), text, "{k}");
            let json = serde_json::to_string(&value).unwrap();
            let back: EntryValue = serde_json::from_str(&json).unwrap();
            assert_eq!(back, value, "{json}");
        }
        let m =
            crate::config::value_from_text(&key("@machine:lab1"), "machine lab1 declared=\"true\"")
                .unwrap();
        assert_eq!(
            m,
            EntryValue::Machine(Membership::declared(GroupName::main(), "lab1", None))
        );
    }

    #[test]
    fn digests_follow_the_value_and_travel_as_hex() {
        let dns =
            crate::config::value_from_text(&key("cluster/dns"), "dns { server \"10.0.0.53\" }")
                .unwrap();
        let same =
            crate::config::value_from_text(&key("cluster/dns"), "dns {\n  server \"10.0.0.53\"\n}")
                .unwrap();
        let other =
            crate::config::value_from_text(&key("cluster/dns"), "dns { server \"10.0.0.54\" }")
                .unwrap();
        assert_eq!(dns.digest(), same.digest(), "layout is not content");
        assert_ne!(dns.digest(), other.digest());
        assert_ne!(EntryValue::Group.digest(), dns.digest());
        let d = dns.digest();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json.len(), 34, "{json}");
        assert_eq!(serde_json::from_str::<EntryDigest>(&json).unwrap(), d);
        assert_eq!(d.to_string().parse::<EntryDigest>().unwrap(), d);
        assert!("xyz".parse::<EntryDigest>().is_err());
        assert!("é".repeat(16).parse::<EntryDigest>().is_err());
        assert!("zz".repeat(16).parse::<EntryDigest>().is_err());
    }

    #[test]
    fn a_value_must_fit_its_key() {
        let dns = crate::config::value_from_text(&key("cluster/dns"), "dns").unwrap();
        assert!(dns.misfit(&key("cluster/dns")).is_none());
        assert_eq!(
            dns.misfit(&key("cluster/ntp")).unwrap(),
            "the value for cluster/ntp is a `dns` node"
        );
        assert_eq!(
            dns.misfit(&key("@cluster")).unwrap(),
            "the value for @cluster must be a cluster entry, not a section"
        );
        assert!(crate::config::value_from_text(&key("cluster/dns"), "dns {").is_err());
        assert!(crate::config::value_from_text(&key("cluster/dns"), "dns\ndns").is_err());
        assert!(
            crate::config::value_from_text(&key("@machine:a"), "machine a group=\"x y\"").is_err()
        );
        let schema = EntryValue::Schema(Node::new("section"));
        assert!(schema.misfit(&key("#schema:x")).is_some(), "unnamed schema");
    }
}
