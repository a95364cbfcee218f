//! Where things are in a file's text: lines and indentation, the full extent of a section
//! node (with the comments that belong to it), the children block of a mode node, and
//! re-indenting a piece of text for a new place.

use std::ops::Range;

use miette::SourceSpan;

use crate::config::lex::Lexed;

/// The start of the line holding `pos`.
pub(crate) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset just after the newline ending the line that holds `pos` (or the end).
pub(crate) fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

/// The leading spaces and tabs of the line holding `pos`.
pub(crate) fn indent_of(text: &str, pos: usize) -> &str {
    let start = line_start(text, pos);
    let line = &text[start..];
    let len = line.len() - line.trim_start_matches([' ', '\t']).len();
    &text[start..start + len]
}

/// True when only spaces and tabs precede `pos` on its line.
pub(crate) fn starts_line(text: &str, pos: usize) -> bool {
    text[line_start(text, pos)..pos]
        .chars()
        .all(|c| c == ' ' || c == '\t')
}

/// The newline the file uses.
pub(crate) fn newline(text: &str) -> &'static str {
    if text.contains("\r\n") { "\r\n" } else { "\n" }
}

/// A node's byte range with trailing whitespace removed (kdl's spans may include it).
pub(crate) fn node_range(text: &str, span: SourceSpan) -> Range<usize> {
    let start = span.offset().min(text.len());
    let end = (span.offset() + span.len()).min(text.len()).max(start);
    let trimmed = text[start..end].trim_end_matches([' ', '\t', '\r', '\n']);
    start..start + trimmed.len()
}

/// A section node and the text around it that belongs to it.
#[derive(Debug, Clone)]
pub(crate) struct Extent {
    /// The node itself, without trailing whitespace.
    pub node: Range<usize>,
    /// Only whitespace precedes the node on its first line.
    pub own_line: bool,
    /// Only whitespace, a `;` and a `//` comment follow it on its last line.
    pub alone_after: bool,
    /// The start of the first `//` line directly above the node (or the node's line start
    /// when there is none); meaningful when `own_line`.
    pub lead: usize,
    /// The end of what follows the node on its last line and belongs to it: a `;` and a
    /// trailing comment, without the newline.
    pub tail: usize,
}

impl Extent {
    /// Measures the section node at `span`.
    pub(crate) fn of(text: &str, lexed: &Lexed, span: SourceSpan) -> Extent {
        let node = node_range(text, span);
        let own_line = starts_line(text, node.start);
        let (alone_after, tail) = tail_of(text, node.end);
        let mut lead = line_start(text, node.start);
        if own_line {
            while lead > 0 {
                let above = line_start(text, lead - 1);
                let first = above + indent_of(text, above).len();
                let is_comment = lexed.line_comment_at(first)
                    && !lexed.in_string(above)
                    && !lexed.in_block_comment(above);
                if !is_comment {
                    break;
                }
                lead = above;
            }
        }
        Extent {
            node,
            own_line,
            alone_after,
            lead,
            tail,
        }
    }

    /// True when the node and its comments fill whole lines.
    pub(crate) fn whole_lines(&self) -> bool {
        self.own_line && self.alone_after
    }

    /// The text to copy elsewhere: with its comment lines and indentation when it fills
    /// whole lines, else the node alone.
    pub(crate) fn copy_range(&self) -> Range<usize> {
        if self.whole_lines() {
            self.lead..self.tail
        } else {
            self.node.clone()
        }
    }

    /// What deleting the node removes: whole lines when it fills them, else the node, a
    /// following `;` and the blanks after it.
    pub(crate) fn delete_range(&self, text: &str) -> Range<usize> {
        if self.whole_lines() {
            return self.lead..line_end(text, self.node.end);
        }
        let rest = &text[self.node.end..];
        let mut end = self.node.end;
        let after_blanks = rest.trim_start_matches([' ', '\t']);
        if let Some(after_semi) = after_blanks.strip_prefix(';') {
            end = text.len() - after_semi.len();
        }
        let blanks = text[end..].len() - text[end..].trim_start_matches([' ', '\t']).len();
        // Keep one separator when the node was glued to what precedes it (`a;dns b`).
        let glued =
            self.node.start > 0 && !text[..self.node.start].ends_with([' ', '\t', '{', ';', '\n']);
        if !glued {
            end += blanks;
        }
        self.node.start..end
    }
}

/// Whether only a `;` and a comment follow `end` on its line, and where they end.
fn tail_of(text: &str, end: usize) -> (bool, usize) {
    let line_stop = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let rest = &text[end..line_stop];
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let trimmed = trimmed.strip_prefix(';').unwrap_or(trimmed);
    let trimmed = trimmed.trim_start_matches([' ', '\t', '\r']);
    if trimmed.is_empty() || trimmed.starts_with("//") {
        // The `;` and the comment stay with the node; the blanks after them do not.
        let kept = rest.trim_end_matches([' ', '\t', '\r']);
        return (true, end + kept.len());
    }
    (false, end)
}

/// Re-indents `piece` (taken from the file at `from`) so that lines that started with
/// `base` start with `dest` instead. The first line loses its leading blanks (the caller
/// places it). Lines that start inside a string are never touched: a multi-line string's
/// value depends on its exact indentation; nor are lines indented less than `base`.
pub(crate) fn reindent(piece: &str, from: usize, lexed: &Lexed, base: &str, dest: &str) -> String {
    let mut out = String::with_capacity(piece.len() + 16);
    let mut offset = from;
    for (i, line) in piece.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let kept = if i == 0 {
            line.trim_start_matches([' ', '\t']).to_owned()
        } else if lexed.in_string(offset) {
            line.to_owned()
        } else if let Some(rest) = line.strip_prefix(base) {
            if rest.trim().is_empty() {
                rest.to_owned()
            } else {
                format!("{dest}{rest}")
            }
        } else {
            line.to_owned()
        };
        out.push_str(&kept);
        offset += line.len() + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lex::lex;

    fn extent(text: &str, needle: &str, len: usize) -> Extent {
        let at = text.find(needle).unwrap();
        Extent::of(text, &lex(text), SourceSpan::from(at..at + len))
    }

    #[test]
    fn comments_above_and_after_belong_to_the_node() {
        let text = "a {\n    x 1\n\n    // one\n    // two\n    dns { y }  ;  // three\n}\n";
        let e = extent(text, "dns", 9);
        assert!(e.whole_lines());
        assert_eq!(
            &text[e.copy_range()],
            "    // one\n    // two\n    dns { y }  ;  // three"
        );
        assert_eq!(
            &text[e.delete_range(text)],
            "    // one\n    // two\n    dns { y }  ;  // three\n"
        );
    }

    #[test]
    fn a_node_sharing_its_line_is_cut_alone() {
        let text = "g { dns { a }; b }";
        let e = extent(text, "dns", 9);
        assert!(!e.whole_lines());
        assert_eq!(&text[e.delete_range(text)], "dns { a }; ");
        let text = "g { b; dns { a } }";
        let e = extent(text, "dns", 10);
        assert_eq!(&text[e.delete_range(text)], "dns { a } ");
    }

    #[test]
    fn reindent_moves_lines_but_not_multiline_strings() {
        let text = "    t {\n        r \"a\" \"\"\"\n    x\n    \"\"\"\n    }";
        let lexed = lex(text);
        let out = reindent(&text[4..], 4, &lexed, "    ", "\t");
        assert_eq!(out, "t {\n\t    r \"a\" \"\"\"\n    x\n    \"\"\"\n\t}");
    }
}
