//! The `secret` value type's format, which the schema checks: an age armoured text (what
//! git may hold), or a secret in clear text (refused, [`PLAINTEXT`]), starred in the
//! snippet of the diagnostic that points at it ([`starred`]). Encryption, the cluster's
//! identities and masking are the `secret` room's, above this one.

use std::sync::Arc;

use age::armor::ArmoredReader;

use crate::config::SourceFile;

/// The first line of an age armoured text.
pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
/// The last line of an age armoured text.
pub const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";

/// The code of the problem a secret in clear text is (`validate`, `plan`, a push).
pub const PLAINTEXT: &str = "strata::secret::plaintext";

/// True when `text` is age armoured text (a secret as git may hold it). Only the frame
/// is looked at; [`check_encrypted`] reads the header too.
pub fn is_encrypted(text: &str) -> bool {
    let t = text.trim();
    t.starts_with(ARMOR_BEGIN) && t.ends_with(ARMOR_END)
}

/// Checks that `text` is a well-formed age armoured text whose header reads (no identity
/// needed); on failure, why.
pub fn check_encrypted(text: &str) -> Result<(), String> {
    if !is_encrypted(text) {
        return Err("not an age encrypted value: no age armour".into());
    }
    let normal = normalized(text);
    age::Decryptor::new_buffered(ArmoredReader::new(normal.as_bytes()))
        .map(|_| ())
        .map_err(|e| format!("not an age encrypted value: {e}"))
}

/// The armoured text as age reads it: no indentation, one trailing newline (a KDL
/// multi-line string keeps neither exactly).
pub fn normalized(text: &str) -> String {
    let mut out: String = text
        .trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

/// `file` with the value of the entry at `start..end` (after its `=` for a property)
/// starred byte for byte, so that a diagnostic's snippet does not show a clear secret
/// and every span still points where it did.
pub fn starred(file: &Arc<SourceFile>, start: usize, end: usize) -> Arc<SourceFile> {
    let text = file.text.as_str();
    let Some(entry) = text.get(start..end) else {
        return file.clone();
    };
    let from = start + entry.find('=').map_or(0, |i| i + 1);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..from]);
    for c in text[from..end].chars() {
        if c == '"' || c.is_whitespace() {
            out.push(c);
        } else {
            out.extend(std::iter::repeat_n('*', c.len_utf8()));
        }
    }
    out.push_str(&text[end..]);
    SourceFile::new(file.name.clone(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starring_keeps_every_offset() {
        let f = SourceFile::new("c.kdl", "x p=\"hé\" q=1\n");
        let s = starred(&f, 2, 9);
        assert_eq!(s.text.as_str(), "x p=\"***\" q=1\n");
        assert_eq!(s.text.len(), f.text.len());
    }
}
