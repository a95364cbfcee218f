//! Bytes → text, as an XML file's declaration says: ISO-8859-1 (which AsyncOS writes)
//! byte by byte, UTF-8 otherwise. Pure; never panics on what a file holds.

/// Decodes a file's bytes as its XML declaration says: ISO-8859-1 (and its aliases) byte
/// by byte, UTF-8 otherwise. A UTF-8 byte-order mark is dropped; UTF-16 is refused.
pub fn decode_bytes(bytes: &[u8]) -> Result<String, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err("UTF-16 files are not supported; save the file as UTF-8 or ISO-8859-1".into());
    }
    let head: String = bytes
        .iter()
        .take(200)
        .take_while(|b| **b != b'>')
        .map(|b| char::from(*b))
        .collect();
    let encoding = head
        .starts_with("<?xml")
        .then(|| {
            let i = head.find("encoding")?;
            let rest = head[i + 8..].trim_start().strip_prefix('=')?.trim_start();
            // Only `"` and `'` quote a value; anything else (a Latin-1 byte read as a
            // two-byte char, say) is no declaration Strata understands.
            let quote = rest.chars().next().filter(|q| matches!(q, '"' | '\''))?;
            let rest = &rest[quote.len_utf8()..];
            Some(rest[..rest.find(quote)?].to_ascii_lowercase())
        })
        .flatten();
    match encoding.as_deref() {
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1" | "iso_8859-1" | "cp819") => {
            Ok(bytes.iter().map(|b| char::from(*b)).collect())
        }
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => String::from_utf8(bytes.to_vec())
            .map_err(|e| {
                format!(
                    "not valid UTF-8 at byte {}; if the file is Latin-1, declare encoding=\"ISO-8859-1\"",
                    e.utf8_error().valid_up_to()
                )
            }),
        Some(other) => Err(format!(
            "the encoding `{other}` is not supported; AsyncOS writes ISO-8859-1, and UTF-8 is read too"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_and_utf8_as_declared() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe9</a>";
        assert_eq!(
            decode_bytes(latin1).unwrap(),
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\u{e9}</a>"
        );
        assert!(decode_bytes(b"<a>\xe9</a>").is_err());
        assert!(decode_bytes(b"\xff\xfe<\0a\0").is_err());
    }

    #[test]
    fn a_malformed_declaration_is_an_error_not_a_panic() {
        // A Latin-1 byte where the quote belongs decodes to a two-byte char.
        for bytes in [
            &b"<?xml version=\"1.0\" encoding=\xe9latin1\xe9?><config/>"[..],
            b"<?xml encoding=",
            b"<?xml encoding=\"",
            b"<?xml encoding=\"\xe9",
            b"<?xml encoding=\xc3\xa9utf-8\xc3\xa9?><config/>",
        ] {
            let _ = decode_bytes(bytes);
        }
        // With no understandable encoding, the file is read as UTF-8.
        assert!(decode_bytes(b"<?xml encoding=\xc3\xa9x\xc3\xa9?><config/>").is_ok());
    }
}
