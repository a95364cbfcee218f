//! The JSON documents of `strata secret`.

use schemars::JsonSchema;
use serde::Serialize;

/// `strata secret recipient|retire --format json`: the cluster's identities.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RecipientsJson {
    /// The machine that answered.
    pub machine: String,
    /// Each identity the cluster decrypts with, the current one first.
    pub recipients: Vec<crate::protocol::message::RecipientInfo>,
}

/// `strata secret encrypt --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EncryptJson {
    /// The armoured age text, as it goes into a KDL string.
    pub encrypted: String,
    /// How many recipients can decrypt it.
    pub recipients: usize,
}

/// `strata secret rotate --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RotateJson {
    /// The machine that answered.
    pub machine: String,
    /// Each identity the cluster decrypts with, the new one first.
    pub recipients: Vec<crate::protocol::message::RecipientInfo>,
    /// The secrets in `--repo` to re-encrypt for the new identity (empty without `--repo`).
    pub reencrypt: Vec<SiteJson>,
}

/// A secret's place in a repo.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SiteJson {
    /// The file, from the repo's root.
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// What it is: `cluster › ldap-servers › profile "corp" bind-password`.
    pub path: String,
}

/// `strata secret reencrypt --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReencryptJson {
    /// How many secrets were (re-)encrypted.
    pub reencrypted: usize,
    /// The files rewritten.
    pub files: Vec<String>,
}
