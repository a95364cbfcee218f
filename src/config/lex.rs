//! Just enough of KDL v2's lexical structure to splice text safely and to guard the
//! parser: where strings and comments are, and which braces match. It is a scanner, not
//! a parser: whatever it gets wrong, the real parse afterwards catches (see
//! `edit::verify`), and it never recurses, so it is safe on any input.

use std::ops::Range;

/// What the scanner found in one file's text.
#[derive(Debug, Default)]
pub(crate) struct Lexed {
    /// Every string literal (quoted, multi-line and raw), delimiters included.
    strings: Vec<Range<usize>>,
    /// Every block comment, delimiters included.
    block_comments: Vec<Range<usize>>,
    /// Where each `//` comment starts.
    line_comments: Vec<usize>,
    /// Braces outside strings and comments, in order.
    braces: Vec<Brace>,
    /// How many names and values the text holds: string literals and runs of other
    /// characters outside strings and comments (`a`, `1`, `#true`, `key=` and its value
    /// are one each). Each costs the parser a node or an entry, whatever its length.
    pub(crate) tokens: usize,
}

/// One `{` or `}`.
#[derive(Debug, Clone, Copy)]
struct Brace {
    at: usize,
    open: bool,
    /// An opening brace directly after `/-`: a commented-out children block.
    slashdashed: bool,
}

/// Scans `text`. Unterminated strings and comments run to the end of the text.
pub(crate) fn lex(text: &str) -> Lexed {
    let b = text.as_bytes();
    let mut out = Lexed::default();
    let mut i = 0;
    let mut slashdash = false;
    // Inside a run of characters that make one bare name or value.
    let mut in_word = false;
    while i < b.len() {
        let rest = &b[i..];
        let word = in_word;
        in_word = false;
        match b[i] {
            b'/' if rest.starts_with(b"//") => {
                out.line_comments.push(i);
                i = memchr(b, i, b'\n');
            }
            b'/' if rest.starts_with(b"/*") => {
                let end = block_comment_end(b, i);
                out.block_comments.push(i..end);
                i = end;
            }
            b'/' if rest.starts_with(b"/-") => {
                slashdash = true;
                i += 2;
            }
            b'"' => {
                let end = quoted_end(b, i);
                out.strings.push(i..end);
                out.tokens += 1;
                slashdash = false;
                i = end;
            }
            b'#' => {
                let hashes = rest.iter().take_while(|&&c| c == b'#').count();
                if b.get(i + hashes) == Some(&b'"') {
                    let end = raw_end(b, i, hashes);
                    out.strings.push(i..end);
                    out.tokens += 1;
                    i = end;
                } else {
                    // A keyword (`#true`): the word after the hashes counts.
                    i += hashes;
                }
                slashdash = false;
            }
            c @ (b'{' | b'}') => {
                out.braces.push(Brace {
                    at: i,
                    open: c == b'{',
                    slashdashed: c == b'{' && slashdash,
                });
                slashdash = false;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            b';' | b'=' | b'(' | b')' => {
                slashdash = false;
                i += 1;
            }
            _ => {
                if !word {
                    out.tokens += 1;
                }
                in_word = true;
                slashdash = false;
                i += 1;
            }
        }
    }
    out
}

/// The index of the next `needle` at or after `from`, or the end.
fn memchr(b: &[u8], from: usize, needle: u8) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == needle)
        .map_or(b.len(), |p| from + p)
}

/// The end of the (nestable) block comment starting at `start`.
fn block_comment_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The end of the quoted (single- or multi-line) string starting at `start`. A
/// single-line string cannot hold a newline: unterminated, it ends there, where the KDL
/// parser resumes after reporting it (a string running on to the end of the text would
/// hide every brace after it from the depth guard).
fn quoted_end(b: &[u8], start: usize) -> usize {
    let multi = b[start..].starts_with(b"\"\"\"");
    let (mut i, close): (usize, &[u8]) = if multi {
        (start + 3, b"\"\"\"")
    } else {
        (start + 1, b"\"")
    };
    while i < b.len() {
        if !multi && matches!(b[i], b'\n' | b'\r') {
            return i;
        }
        if b[i] == b'\\' {
            i += 1;
            // A whitespace escape (`\` then spaces and newlines) may span lines.
            let ws = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_whitespace())
                .count();
            i += ws.max(1);
        } else if b[i..].starts_with(close) {
            return i + close.len();
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The end of the raw string with `hashes` hashes starting at `start`.
fn raw_end(b: &[u8], start: usize, hashes: usize) -> usize {
    let open = start + hashes;
    let multi = b[open..].starts_with(b"\"\"\"");
    let mut close = if multi {
        b"\"\"\"".to_vec()
    } else {
        b"\"".to_vec()
    };
    close.extend(std::iter::repeat_n(b'#', hashes));
    let from = open + if multi { 3 } else { 1 };
    b[from..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map_or(b.len(), |p| from + p + close.len())
}

impl Lexed {
    /// The first brace that opens a block nested deeper than `limit`, if any.
    pub(crate) fn too_deep(&self, limit: usize) -> Option<usize> {
        let mut depth = 0usize;
        for brace in &self.braces {
            if brace.open {
                depth += 1;
                if depth > limit {
                    return Some(brace.at);
                }
            } else {
                depth = depth.saturating_sub(1);
            }
        }
        None
    }

    /// True when `pos` lies inside a string literal (after its first byte).
    pub(crate) fn in_string(&self, pos: usize) -> bool {
        self.strings.iter().any(|r| r.start < pos && pos < r.end)
    }

    /// True when a `//` comment starts at `pos`.
    pub(crate) fn line_comment_at(&self, pos: usize) -> bool {
        self.line_comments.binary_search(&pos).is_ok()
    }

    /// True when `pos` lies inside a block comment (after its first byte).
    pub(crate) fn in_block_comment(&self, pos: usize) -> bool {
        self.block_comments
            .iter()
            .any(|r| r.start < pos && pos < r.end)
    }

    /// The children block of the node in `node`: the offsets of its `{` and matching `}`.
    /// Commented-out blocks (`/-{ … }`) are skipped; `None` when the node has no block.
    pub(crate) fn children_block(&self, node: Range<usize>) -> Option<(usize, usize)> {
        let mut depth = 0usize;
        let mut open: Option<(usize, bool)> = None;
        for brace in self
            .braces
            .iter()
            .filter(|br| node.start <= br.at && br.at < node.end)
        {
            match (brace.open, open) {
                (true, None) => {
                    open = Some((brace.at, brace.slashdashed));
                    depth = 1;
                }
                (true, Some(_)) => depth += 1,
                (false, Some((at, skipped))) => {
                    depth -= 1;
                    if depth == 0 {
                        if !skipped {
                            return Some((at, brace.at));
                        }
                        open = None;
                    }
                }
                // A stray `}` does not belong to this node.
                (false, None) => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_in_strings_and_comments_do_not_count() {
        let text = "group \"{\" /* { */ /-{ a } { // }\n  x \"}\" #\"}\"# \"\"\"\n}\n\"\"\"\n}";
        let lexed = lex(text);
        let (open, close) = lexed.children_block(0..text.len()).unwrap();
        assert_eq!(&text[open..=open], "{");
        assert_eq!(open, text.find(" { //").unwrap() + 1);
        assert_eq!(close, text.len() - 1);
        assert!(lexed.line_comment_at(text.find("// }").unwrap()));
        assert!(lexed.in_string(text.find("\n}\n").unwrap() + 1));
    }

    #[test]
    fn nesting_depth_ignores_braces_in_strings() {
        let text = "a { b { c \"{{{{\" } }";
        assert_eq!(lex(text).too_deep(2), None);
        assert_eq!(lex(text).too_deep(1), Some(6));
    }

    #[test]
    fn an_unterminated_string_ends_at_its_line() {
        let text = format!("\"\n{}", "a {".repeat(100));
        assert_eq!(lex(&text).too_deep(64), Some(2 + 3 * 64 + 2));
        // …but a whitespace escape continues it on the next line.
        let text = "a \"x\\  \n  {\" { }";
        assert!(lex(text).in_string(text.find('{').unwrap()));
    }

    #[test]
    fn names_and_values_are_counted_outside_strings_and_comments() {
        let text = "a 1 #true key=\"v w\" (t)2 #\"raw\"#; b { c } // x y z\n/* p q */ d;e";
        assert_eq!(lex(text).tokens, 12);
        assert_eq!(lex(&"1 ".repeat(1000)).tokens, 1000);
        assert_eq!(lex("").tokens, 0);
    }

    #[test]
    fn a_node_without_block_has_none() {
        let text = "group \"Rome\" // {\n";
        assert_eq!(lex(text).children_block(0..12), None);
    }
}
