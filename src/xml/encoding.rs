//! Bytes → text, as an XML file's declaration says: ISO-8859-1 (which AsyncOS writes)
//! byte by byte, UTF-8 with the position of a bad byte, and any other encoding a
//! declaration may name (windows-1252, ISO-8859-15, Shift_JIS, …) through encoding_rs.
//! Pure; never panics on what a file holds.

/// Decodes a file's bytes as its XML declaration says: ISO-8859-1 (and its aliases) byte
/// by byte — each byte the code point of its value, as the writer writes it back, where
/// encoding_rs would read those labels as windows-1252 —, UTF-8 without a declaration or
/// with one, and any other WHATWG label with encoding_rs. A UTF-8 byte-order mark is
/// dropped; UTF-16 is refused.
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
        Some(other) => match encoding_rs::Encoding::for_label(other.as_bytes()) {
            Some(enc) if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE => Err(
                "UTF-16 files are not supported; save the file as UTF-8 or ISO-8859-1".into(),
            ),
            Some(enc) => enc
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|text| text.into_owned())
                .ok_or_else(|| {
                    format!(
                        "not valid {} text; save the file as UTF-8, or declare the encoding it is in",
                        enc.name()
                    )
                }),
            None => Err(format!(
                "the encoding `{other}` is not supported; AsyncOS writes ISO-8859-1, and UTF-8, windows-1252 and the other encodings web browsers know are read too"
            )),
        },
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
    fn windows_1252_and_other_declared_encodings_are_read() {
        // 0x93/0x94 are curly quotes in windows-1252 (C1 controls in ISO-8859-1), 0x80 the euro.
        let cp1252 = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><a>\x93\x80 5\x94</a>";
        assert!(
            decode_bytes(cp1252)
                .unwrap()
                .ends_with("<a>\u{201c}\u{20ac} 5\u{201d}</a>")
        );
        let latin9 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><a>\xa4</a>";
        assert!(decode_bytes(latin9).unwrap().ends_with("<a>\u{20ac}</a>"));
        // ISO-8859-1 stays byte for byte: 0x93 is U+0093, as the writer writes it back.
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\x93</a>";
        assert!(decode_bytes(latin1).unwrap().ends_with("<a>\u{93}</a>"));
        let err = decode_bytes(b"<?xml version=\"1.0\" encoding=\"klingon\"?><a/>").unwrap_err();
        assert!(err.contains("`klingon` is not supported"), "{err}");
        let err = decode_bytes(b"<?xml version=\"1.0\" encoding=\"utf-16\"?><a/>").unwrap_err();
        assert!(err.contains("UTF-16"), "{err}");
        let err =
            decode_bytes(b"<?xml version=\"1.0\" encoding=\"shift_jis\"?><a>\x82</a>").unwrap_err();
        assert!(err.contains("not valid Shift_JIS"), "{err}");
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
