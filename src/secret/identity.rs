//! The cluster's identities as the store holds them ([`Key::Identity`]): made when the
//! cluster is created (or by `strata secret rotate`), replicated to every member as
//! cluster-owned state no repo declares, and used to decrypt the repo's secrets. The
//! newest is the current one, which values are encrypted to; older ones still decrypt
//! until `strata secret retire` removes them.

use sha2::{Digest, Sha256};

use super::SecretError;
use crate::model::{ClusterIdentity, EntryValue, Key};
use crate::state::Live;

/// A new identity, made at `wall_ms`, as the entry to write.
pub fn generate(wall_ms: u64) -> (Key, EntryValue) {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let value = ClusterIdentity {
        secret: identity.to_string().expose_secret().to_owned(),
        recipient: recipient.clone(),
        created_ms: wall_ms,
    };
    (key_of(&recipient), EntryValue::Identity(value))
}

/// The key an identity with `recipient` is stored under: its id is the first 16 hex
/// digits of the recipient's SHA-256.
pub fn key_of(recipient: &str) -> Key {
    let id = hex::encode(&Sha256::digest(recipient.as_bytes())[..8]);
    Key::Identity(id)
}

/// The live identities, the current (newest) first, with their ids.
pub fn all(live: &Live) -> Vec<(String, &ClusterIdentity)> {
    let mut out: Vec<(String, &ClusterIdentity)> = live
        .iter()
        .filter_map(|(k, e)| match (k, e.value.as_ref()) {
            (Key::Identity(id), Some(EntryValue::Identity(i))) => Some((id.clone(), i)),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| b.1.created_ms.cmp(&a.1.created_ms).then(a.0.cmp(&b.0)));
    out
}

/// The age identities of `identities`, for decryption; one that does not read is left
/// out (and logged).
pub fn keys<'a>(
    identities: impl IntoIterator<Item = &'a ClusterIdentity>,
) -> Vec<age::x25519::Identity> {
    identities
        .into_iter()
        .filter_map(|i| match i.secret.parse::<age::x25519::Identity>() {
            Ok(k) => Some(k),
            Err(_) => {
                tracing::error!(recipient = %i.recipient, "a stored identity cannot be read");
                None
            }
        })
        .collect()
}

/// Decrypts every age armoured string in `node` (and its children) in place, with
/// `identities`; returns what could not be decrypted, as `PATH: why` (no value in it).
pub fn decrypt_node(
    node: &mut crate::model::Node,
    identities: &[age::x25519::Identity],
    path: &str,
) -> Vec<String> {
    let mut failed = Vec::new();
    let here = match node.args.first().and_then(crate::model::Value::as_str) {
        Some(name) if !super::is_encrypted(name) => format!("{path} › {} \"{name}\"", node.name),
        _ => format!("{path} › {}", node.name),
    };
    let mut one = |what: String, v: &mut crate::model::Value| {
        if let crate::model::Value::String(s) = v
            && super::is_encrypted(s)
        {
            match super::decrypt(s, identities) {
                Ok(clear) => *s = clear,
                Err(e) => failed.push(format!("{what}: {e}")),
            }
        }
    };
    for (i, v) in node.args.iter_mut().enumerate() {
        one(format!("{here} argument {}", i + 1), v);
    }
    for (k, v) in node.props.iter_mut() {
        one(format!("{here} {k}="), v);
    }
    for child in &mut node.children {
        failed.extend(decrypt_node(child, identities, &here));
    }
    failed
}

/// Why the cluster cannot decrypt: for messages that must say what to do.
pub fn no_identity_help(e: &SecretError) -> &'static str {
    match e {
        SecretError::NoIdentity => {
            "re-encrypt it to the cluster's current recipient: `strata secret reencrypt --repo DIR` (after a retire, with the value in the clear)"
        }
        _ => "encrypt it again with `strata secret encrypt`",
    }
}
