//! Secrets in a config repo: values of `type="secret"` fields, kept in git only as age
//! armoured text encrypted to the cluster's recipients (and any break-glass recipient),
//! decrypted only where a machine needs the clear value (its running config, its hooks,
//! `export-xml`).
//!
//! - This module: the format (what counts as encrypted), encryption to recipients,
//!   decryption with identities, and how a secret is shown everywhere else
//!   (`<secret sha256:…>`, [`masked`]).
//! - [`identity`]: the cluster's identities as the store holds them.
//! - [`sites`]: where a repo's files hold secrets (file, line, the value's bytes).
//! - [`mask`]: masking what commands print, and clear secrets in diagnostics.

pub mod identity;
pub mod mask;
pub mod sites;

use std::io::{Read, Write};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use sha2::{Digest, Sha256};

use crate::schema::secret_value::normalized;
pub use crate::schema::secret_value::{ARMOR_BEGIN, ARMOR_END, PLAINTEXT, is_encrypted};

/// Lets secrets in clear text through, as warnings (`--allow-plaintext-secrets`, while a
/// repo migrates to encrypted secrets).
pub fn allow_plaintext(diags: &mut crate::config::Diagnostics) {
    diags.downgrade(
        PLAINTEXT,
        |_| true,
        "allowed by --allow-plaintext-secrets: encrypt it (`strata secret reencrypt --repo DIR`) \
         before it reaches git",
        true,
    );
}

/// Lets the clear secrets of AsyncOS XML files through as warnings: an appliance's
/// `saveconfig` holds its passwords as the appliance writes them, and `import-xml`
/// encrypts them on the way into the repo.
pub fn allow_plaintext_in_xml(diags: &mut crate::config::Diagnostics) {
    diags.downgrade(
        PLAINTEXT,
        |p| {
            p.at.as_ref()
                .is_some_and(|at| at.file.name.to_ascii_lowercase().ends_with(".xml"))
        },
        "an appliance's file holds its passwords; `strata import-xml … --recipient age1…` \
         writes them encrypted",
        false,
    );
}

/// What went wrong encrypting or decrypting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// A recipient is not an age X25519 recipient (`age1…`).
    #[error("`{0}` is not an age recipient (age1…)")]
    BadRecipient(String),
    /// Nothing to encrypt to.
    #[error("no recipient to encrypt to")]
    NoRecipient,
    /// The text is not age armoured text.
    #[error("not an age encrypted value: {0}")]
    Malformed(String),
    /// None of the identities held can decrypt it.
    #[error(
        "none of the cluster's identities can decrypt it (encrypted to a retired or another cluster's key)"
    )]
    NoIdentity,
    /// The clear text is not UTF-8.
    #[error("the decrypted value is not UTF-8 text")]
    NotText,
}

/// Checks that `text` is a well-formed age armoured text whose header reads: what
/// `validate` asks of an encrypted secret (no identity needed).
pub fn check_encrypted(text: &str) -> Result<(), SecretError> {
    crate::schema::secret_value::check_encrypted(text).map_err(SecretError::Malformed)
}

/// Parses age X25519 recipients (`age1…`).
pub fn parse_recipients(texts: &[String]) -> Result<Vec<age::x25519::Recipient>, SecretError> {
    texts
        .iter()
        .map(|t| {
            t.trim()
                .parse::<age::x25519::Recipient>()
                .map_err(|_| SecretError::BadRecipient(t.clone()))
        })
        .collect()
}

/// Encrypts `clear` to every one of `recipients`, as age armoured text (ending in a
/// newline).
pub fn encrypt(clear: &str, recipients: &[age::x25519::Recipient]) -> Result<String, SecretError> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|_| SecretError::NoRecipient)?;
    let mut out = Vec::new();
    let io = |e: std::io::Error| SecretError::Malformed(e.to_string());
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(io)?;
    let mut writer = encryptor.wrap_output(armor).map_err(io)?;
    writer.write_all(clear.as_bytes()).map_err(io)?;
    writer.finish().and_then(|a| a.finish()).map_err(io)?;
    String::from_utf8(out).map_err(|_| SecretError::NotText)
}

/// Decrypts armoured `text` with whichever of `identities` it was encrypted to.
pub fn decrypt(text: &str, identities: &[age::x25519::Identity]) -> Result<String, SecretError> {
    let normal = normalized(text);
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(normal.as_bytes()))
        .map_err(|e| SecretError::Malformed(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => SecretError::NoIdentity,
            other => SecretError::Malformed(other.to_string()),
        })?;
    let mut clear = Vec::new();
    reader
        .read_to_end(&mut clear)
        .map_err(|e| SecretError::Malformed(e.to_string()))?;
    String::from_utf8(clear).map_err(|_| SecretError::NotText)
}

/// How a secret shows wherever it is not needed in the clear (plan, show, log, check,
/// JSON, diagnostics): `<secret sha256:0123456789ab…>`, a digest of the text as stored —
/// the ciphertext. Not of the clear text: a digest of a password is something to guess
/// passwords against offline. A changed secret is a new ciphertext, so it still shows
/// as a change (and so does the same value encrypted again, which is a change to git).
pub fn masked(stored: &str) -> String {
    let digest = Sha256::digest(normalized(stored).as_bytes());
    format!("<secret sha256:{}…>", &hex::encode(digest)[..12])
}

/// Writes armoured `text` as a KDL multi-line string value indented by `indent` (the
/// indentation of the node's line), the form `strata secret encrypt` prints and
/// `reencrypt` writes.
pub fn kdl_multiline(text: &str, indent: &str) -> String {
    let mut out = String::from("\"\"\"\n");
    for line in text.trim().lines() {
        out.push_str(indent);
        out.push_str("    ");
        out.push_str(line.trim());
        out.push('\n');
    }
    out.push_str(indent);
    out.push_str("    \"\"\"");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_to_several_recipients_each_decrypts() {
        let a = age::x25519::Identity::generate();
        let b = age::x25519::Identity::generate();
        let text = encrypt("s3cret", &[a.to_public(), b.to_public()]).unwrap();
        assert!(is_encrypted(&text));
        check_encrypted(&text).unwrap();
        assert_eq!(decrypt(&text, std::slice::from_ref(&a)).unwrap(), "s3cret");
        assert_eq!(decrypt(&text, std::slice::from_ref(&b)).unwrap(), "s3cret");
        let other = age::x25519::Identity::generate();
        assert_eq!(decrypt(&text, &[other]), Err(SecretError::NoIdentity));
        assert!(!text.contains("s3cret"));
    }

    #[test]
    fn kdl_multiline_strings_read_back_and_decrypt() {
        let a = age::x25519::Identity::generate();
        let text = encrypt("pa\"ss", &[a.to_public()]).unwrap();
        let kdl = format!(
            "    profile \"x\" bind-password={}\n",
            kdl_multiline(&text, "    ")
        );
        let doc: kdl::KdlDocument = kdl.parse().unwrap();
        let value = doc.nodes()[0].get("bind-password").unwrap();
        let stored = value.as_string().unwrap();
        check_encrypted(stored).unwrap();
        assert_eq!(decrypt(stored, &[a]).unwrap(), "pa\"ss");
    }

    #[test]
    fn malformed_armour_and_clear_text_are_told_apart() {
        assert!(!is_encrypted("hunter2"));
        assert!(check_encrypted("hunter2").is_err());
        let broken = format!("{ARMOR_BEGIN}\nnot base64 at all!\n{ARMOR_END}\n");
        assert!(is_encrypted(&broken));
        assert!(matches!(
            check_encrypted(&broken),
            Err(SecretError::Malformed(_))
        ));
        assert!(parse_recipients(&["age1nope".into()]).is_err());
    }

    #[test]
    fn masks_name_the_ciphertext_not_the_clear_text() {
        let m = masked("-----BEGIN AGE ENCRYPTED FILE-----\nabc\n-----END AGE ENCRYPTED FILE-----");
        assert!(m.starts_with("<secret sha256:") && m.ends_with("…>"), "{m}");
        assert_ne!(m, masked("other"));
    }
}
