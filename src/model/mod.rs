//! The pure data model: names, levels and modes, the canonical span-free form of a
//! section's contents, and what the store holds — keys, typed entry values, versions and
//! provenance — in the one encoding the store and the wire share; and what Strata knows
//! of the appliances themselves ([`appliance`]: versions, how many a cluster holds).

mod address;
pub mod appliance;
#[macro_use]
mod json_schema;
mod encoding;
mod entry;
mod hlc;
mod key;
mod level;
mod names;
mod node;
mod provenance;

pub use address::{host_of, is_ip, split_port};
pub use encoding::ENCODING;
pub use entry::{CatalogueSpec, ClusterIdentity, EntryDigest, EntryValue, Membership, PendingJoin};
pub use hlc::{Clock, ClockSkew, Hlc, Version};
pub use key::{Key, KeyParseError};
pub use level::{Level, Mode, ModeParseError};
pub use names::{
    GroupName, MODE_NAME_RULE, MachineName, NameError, SECTION_NAME_RULE, SectionName,
    is_mode_name, is_section_name,
};
pub use node::{Node, Value};
pub use provenance::{ChangeMeta, ChangeSetId, Confirm, OriginKind, Rollout, Source, Stamp, Wave};

/// The group every machine belongs to unless it names another one, as in AsyncOS.
pub const MAIN_GROUP: &str = "Main_Group";
