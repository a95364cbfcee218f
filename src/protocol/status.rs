//! What `strata cluster list`, `connstatus` and `prepjoin` show: plain data, the same in
//! the agent's answer and in the CLI's JSON.

use serde::{Deserialize, Serialize};

use crate::state::StoreFailure;

/// A machine registered to join with its host key, or this machine as `prepjoin print`
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingEntry {
    /// Machine name.
    pub host: String,
    /// Serial number.
    pub serial: String,
    /// Host key (OpenSSH public-key line).
    pub key: String,
}

/// How the answering machine reaches another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// The answering machine itself.
    Local,
    /// Over its direct link: `connected`, in JSON as in `cluster list`'s text.
    #[serde(rename = "connected", alias = "direct")]
    Direct,
    /// Through another machine (its direct link is down).
    Routed,
    /// Not at all.
    Unreachable,
    /// Detached with `cluster disconnect`.
    Disconnected,
    /// Declared (by a repo) but not joined yet.
    Expected,
}

impl Reach {
    /// The word `list` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Local => "local",
            Reach::Direct => "connected",
            Reach::Routed => "routed",
            Reach::Unreachable => "unreachable",
            Reach::Disconnected => "disconnected",
            Reach::Expected => "expected",
        }
    }
}

/// One machine in `cluster list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MachineListing {
    /// Machine name.
    pub name: String,
    /// Address (as declared or as joined).
    pub address: String,
    /// Serial number, if known.
    pub serial: Option<String>,
    /// How the answering machine reaches it.
    pub reach: Reach,
    /// A member no config repo declared, in a cluster driven from a repo.
    pub unmanaged: bool,
    /// Since when, and why, it cannot write its store (it is Degraded), as its last ping
    /// said (its own, for the answering machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_failure: Option<StoreFailure>,
    /// The Strata version its agent runs, as recorded in its membership (`None`:
    /// unknown, not joined yet).
    #[serde(default)]
    pub strata_version: Option<String>,
    /// Its appliance's version as its agent reports it (`None`: unknown).
    #[serde(default)]
    pub appliance_version: Option<String>,
}

/// One group in `cluster list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupListing {
    /// Group name.
    pub name: String,
    /// Its machines, sorted.
    pub machines: Vec<MachineListing>,
}

/// `cluster list`: the cluster as the answering machine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClusterListing {
    /// The cluster's name (`None`: standalone).
    pub cluster: Option<String>,
    /// The answering machine.
    pub machine: String,
    /// Groups, sorted.
    pub groups: Vec<GroupListing>,
}

/// The state of one direct link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinkEntry {
    /// The machine at the other end.
    pub to: String,
    /// Whether the direct link is up.
    pub up: bool,
    /// Round-trip time of the last ping answered over it, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// How messages for `to` go: `None` when unreachable, `to` itself when direct, or the
    /// next machine on the way.
    pub via: Option<String>,
    /// Why the answering machine's last dial of a down link failed (its own links only):
    /// unreachable, refused, or another Strata release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The links of one machine, as it last reported them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinkView {
    /// The machine whose links these are.
    pub machine: String,
    /// How long ago it reported them (0 for the answering machine itself); `None` if it
    /// never has.
    pub age_ms: Option<u64>,
    /// One entry per other member, sorted.
    pub links: Vec<LinkEntry>,
}

/// `cluster connstatus`: every member's links.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConnStatus {
    /// The answering machine.
    pub machine: String,
    /// One view per member, sorted; the answering machine's is current, the others' as
    /// their last ping carried them.
    pub views: Vec<LinkView>,
}
