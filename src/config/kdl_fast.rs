//! A fast reader for the plain KDL that config repos are written in, for `read_kdl`:
//! nodes named by identifiers or quoted strings, arguments and properties that are
//! identifiers, single-line quoted strings, decimal integers, `#true`, `#false` and
//! `#null`, children blocks, `;`, and `//` and `/* */` comments, all in ASCII outside
//! strings and comments. It gives the nodes, entries, values and spans kdl's own parser
//! gives for such text, without the formatting (so what it reads must not be printed
//! back), about twenty times faster.
//!
//! Anything else — a slashdash, a type annotation, a raw, multi-line or odd string, a
//! float or radix number, a line continuation, non-ASCII space, a block nested deeper than
//! [`MAX_DEPTH`], and every syntax error — makes it give up (`None`), and the caller
//! parses the text with kdl: whatever the reader is unsure of costs a second parse, never
//! a different answer. `tests/it/kdl_reader.rs` checks the two against each other, on real
//! repos, chosen cases and fuzzed input.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode, KdlValue};
use miette::SourceSpan;

use super::kdl_text::MAX_DEPTH;

/// Reads `text`, or `None` when it is not in the subset described above (or not KDL).
pub fn read(text: &str) -> Option<KdlDocument> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let doc = r.nodes(0)?;
    (r.i == r.b.len()).then_some(doc)
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Bytes that end an identifier: kdl's `[\\/(){};[]"#=]`, space and control characters.
fn ident_byte(c: u8) -> bool {
    (0x21..0x7f).contains(&c) && !b"\\/(){};[]\"#=".contains(&c)
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    /// The nodes of the document (`depth` 0, up to the end of the text) or of a children
    /// block (up to its `}`, left for the caller).
    fn nodes(&mut self, depth: usize) -> Option<KdlDocument> {
        let mut doc = KdlDocument::new();
        let mut span: Option<(usize, usize)> = None;
        loop {
            self.line_space()?;
            match self.peek() {
                None if depth == 0 => break,
                Some(b'}') if depth > 0 => break,
                None | Some(b'}') => return None,
                Some(_) => {}
            }
            let node = self.node(depth)?;
            let start = span.map_or(node.span().offset(), |(s, _)| s);
            span = Some((start, self.i));
            doc.nodes_mut().push(node);
            // A node ends at a terminator, which `line_space` takes, or at `}`.
            if self.peek() == Some(b';') {
                self.i += 1;
            }
        }
        // An empty document's span is where its nodes would have started.
        let (start, end) = span.unwrap_or((self.i, self.i));
        doc.set_span(start..end);
        Some(doc)
    }

    /// One node, from its name to the end of the space after its entries or children.
    fn node(&mut self, depth: usize) -> Option<KdlNode> {
        let start = self.i;
        let (name, span) = self.string()?;
        let mut node = KdlNode::new(identifier(name, span));
        loop {
            let before = self.i;
            self.node_space()?;
            let spaced = self.i > before;
            match self.peek() {
                None | Some(b'\n' | b'\r' | b';' | b'}') => break,
                Some(b'/') if self.at(1) == Some(b'/') => break,
                Some(b'{') => {
                    if depth + 1 > MAX_DEPTH {
                        return None;
                    }
                    self.i += 1;
                    let children = self.nodes(depth + 1)?;
                    self.i += 1; // the `}` that `nodes` stopped at
                    node.set_children(children);
                    self.node_space()?;
                    match self.peek() {
                        None | Some(b'\n' | b'\r' | b';' | b'}') => break,
                        Some(b'/') if self.at(1) == Some(b'/') => break,
                        _ => return None,
                    }
                }
                Some(_) if spaced => {
                    let entry = self.entry()?;
                    node.entries_mut().push(entry);
                }
                Some(_) => return None,
            }
        }
        node.set_span(start..self.i);
        Some(node)
    }

    /// An argument or a property (`key=value`, with space around `=` allowed).
    fn entry(&mut self) -> Option<KdlEntry> {
        let start = self.i;
        if !self.starts_string() {
            let mut entry = KdlEntry::new(self.value()?);
            entry.set_span(start..self.i);
            return Some(entry);
        }
        let (key, key_span) = self.string()?;
        let after_key = self.i;
        self.node_space()?;
        let mut entry = if self.peek() == Some(b'=') {
            self.i += 1;
            self.node_space()?;
            let mut entry = KdlEntry::new(self.value()?);
            entry.set_name(Some(identifier(key, key_span)));
            entry
        } else {
            self.i = after_key;
            KdlEntry::new(KdlValue::String(key))
        };
        entry.set_span(start..self.i);
        Some(entry)
    }

    /// A value: a string, an integer or a keyword.
    fn value(&mut self) -> Option<KdlValue> {
        match self.peek()? {
            b'#' => self.keyword(),
            _ if self.starts_string() => Some(KdlValue::String(self.string()?.0)),
            _ => self.integer(),
        }
    }

    /// True when a string starts here rather than a number: a quote, or an identifier
    /// character that is not a digit and not a sign or dot followed by one.
    fn starts_string(&self) -> bool {
        match self.peek() {
            Some(b'"') => true,
            Some(b'+' | b'-') => !self.at(1).is_some_and(|c| c.is_ascii_digit()),
            Some(c) => ident_byte(c) && !c.is_ascii_digit(),
            None => false,
        }
    }

    /// An identifier or a quoted string and its span, followed by something that may end
    /// a value.
    fn string(&mut self) -> Option<(String, SourceSpan)> {
        let start = self.i;
        let value = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.identifier()?
        };
        if !self.ends_value() {
            return None;
        }
        Some((value, SourceSpan::from(start..self.i)))
    }

    fn identifier(&mut self) -> Option<String> {
        let start = self.i;
        let first = self.peek()?;
        // What starts like a number is not an identifier: `1`, `-1`, `.5`, `+.5`, `-.5`.
        let digit = |k: usize| self.at(k).is_some_and(|c| c.is_ascii_digit());
        let number_like = match first {
            b'+' | b'-' => digit(1) || (self.at(1) == Some(b'.') && digit(2)),
            b'.' => digit(1),
            c => c.is_ascii_digit(),
        };
        if !ident_byte(first) || number_like {
            return None;
        }
        while self.peek().is_some_and(ident_byte) {
            self.i += 1;
        }
        let s = &self.text[start..self.i];
        // Non-ASCII identifier characters, and the bare keywords kdl refuses.
        if self.peek().is_some_and(|c| c >= 0x80)
            || matches!(s, "true" | "false" | "null" | "inf" | "-inf" | "nan")
        {
            return None;
        }
        Some(s.to_owned())
    }

    /// A single-line quoted string with the escapes of KDL v2.
    fn quoted(&mut self) -> Option<String> {
        if self.b[self.i..].starts_with(b"\"\"\"") {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let run = self.i;
            while self
                .peek()
                .is_some_and(|c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
            {
                self.i += 1;
            }
            out.push_str(&self.text[run..self.i]);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => self.escape(&mut out)?,
                b'\t' => {
                    out.push('\t');
                    self.i += 1;
                }
                // Newlines (an error in a single-line string) and control characters.
                c if c < 0x80 => return None,
                _ => {
                    let c = self.text[self.i..].chars().next()?;
                    if is_disallowed(c) || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
                        return None;
                    }
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    /// The escape at the `\` here, appended to `out`.
    fn escape(&mut self, out: &mut String) -> Option<()> {
        self.i += 1;
        let c = match self.peek()? {
            b'\\' => '\\',
            b'"' => '"',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b's' => ' ',
            b'u' if self.at(1) == Some(b'{') => {
                let hex = self.i + 2;
                let mut end = hex;
                while end - hex < 6 && self.b.get(end).is_some_and(u8::is_ascii_hexdigit) {
                    end += 1;
                }
                if end == hex || self.b.get(end) != Some(&b'}') {
                    return None;
                }
                let c = char::from_u32(u32::from_str_radix(&self.text[hex..end], 16).ok()?)?;
                out.push(c);
                self.i = end + 1;
                return Some(());
            }
            // A whitespace escape: the backslash and the space and newlines after it.
            b' ' | b'\t' | b'\n' | b'\r' => {
                while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                    self.i += 1;
                }
                // Unicode space or another newline would continue it.
                return (!self.peek().is_some_and(|c| c >= 0x80 || c == 0x0b || c == 0x0c))
                    .then_some(());
            }
            _ => return None,
        };
        out.push(c);
        self.i += 1;
        Some(())
    }

    /// A decimal integer without `_`; floats, other radixes and huge numbers give up.
    fn integer(&mut self) -> Option<KdlValue> {
        let start = self.i;
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.i += 1;
        }
        let digits = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == digits || self.i - digits > 30 || !self.ends_value() {
            return None;
        }
        Some(KdlValue::Integer(self.text[start..self.i].parse().ok()?))
    }

    fn keyword(&mut self) -> Option<KdlValue> {
        let rest = &self.b[self.i..];
        let (value, len) = if rest.starts_with(b"#true") {
            (KdlValue::Bool(true), 5)
        } else if rest.starts_with(b"#false") {
            (KdlValue::Bool(false), 6)
        } else if rest.starts_with(b"#null") {
            (KdlValue::Null, 5)
        } else {
            return None;
        };
        self.i += len;
        self.ends_value().then_some(value)
    }

    /// True when what follows may end a value (kdl's `value_terminator`, less what gives
    /// up anyway).
    fn ends_value(&self) -> bool {
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b';' | b'{' | b'}' | b'=') => true,
            Some(b'/') => matches!(self.at(1), Some(b'*' | b'/')),
            _ => false,
        }
    }

    /// Space within a node: spaces, tabs and block comments.
    fn node_space(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'/') if self.at(1) == Some(b'*') => self.block_comment()?,
                _ => return Some(()),
            }
        }
    }

    /// Space between nodes: node space, newlines and line comments.
    fn line_space(&mut self) -> Option<()> {
        loop {
            self.node_space()?;
            match self.peek() {
                Some(b'\n' | b'\r') => self.i += 1,
                Some(b'/') if self.at(1) == Some(b'/') => self.line_comment()?,
                _ => return Some(()),
            }
        }
    }

    /// A `//` comment, up to its newline.
    fn line_comment(&mut self) -> Option<()> {
        while let Some(c) = self.peek() {
            match c {
                b'\n' | b'\r' => return Some(()),
                // Vertical tab and form feed are newlines to KDL.
                0x0b | 0x0c => return None,
                c if c < 0x80 => self.i += 1,
                _ => {
                    let c = self.text[self.i..].chars().next()?;
                    if matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
                        return None;
                    }
                    self.i += c.len_utf8();
                }
            }
        }
        Some(())
    }

    /// A `/* */` comment, which nests.
    fn block_comment(&mut self) -> Option<()> {
        self.i += 2;
        let mut depth = 1usize;
        while depth > 0 {
            let rest = self.b.get(self.i..)?;
            if rest.starts_with(b"*/") {
                depth -= 1;
                self.i += 2;
            } else if rest.starts_with(b"/*") {
                depth += 1;
                self.i += 2;
            } else if rest.is_empty() {
                return None;
            } else {
                self.i += 1;
            }
        }
        Some(())
    }
}

fn identifier(value: String, span: SourceSpan) -> KdlIdentifier {
    let mut ident = KdlIdentifier::from(value);
    ident.set_span(span);
    ident
}

/// kdl's disallowed literal code points that are not ASCII controls.
fn is_disallowed(c: char) -> bool {
    matches!(c,
        '\u{200E}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}
