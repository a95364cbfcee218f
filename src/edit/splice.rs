//! Text splices: what putting a section node into a mode, or taking it out, does to the
//! file's text, and applying several splices to one file at once. Every byte outside a
//! splice's range is kept.

use std::ops::Range;

use super::layout::{Extent, indent_of, line_start, newline, node_range, reindent, starts_line};
use crate::config::lex::{Lexed, lex};
use crate::config::{ModeDecl, SectionDecl};

/// Replace `range` of a file's text with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Splice {
    /// The bytes replaced (empty for an insertion).
    pub range: Range<usize>,
    /// What goes there.
    pub text: String,
}

/// One file's original text, scanned.
pub(crate) struct Text<'a> {
    /// The text.
    pub text: &'a str,
    /// What the scanner found in it.
    pub lexed: Lexed,
}

impl<'a> Text<'a> {
    /// Scans `text`.
    pub(crate) fn new(text: &'a str) -> Text<'a> {
        Text {
            text,
            lexed: lex(text),
        }
    }

    fn extent(&self, section: &SectionDecl) -> Extent {
        Extent::of(self.text, &self.lexed, section.node.span)
    }

    /// The `{` and `}` of a mode node's children block.
    fn block(&self, decl: &ModeDecl) -> Option<(usize, usize)> {
        self.lexed.children_block(node_range(self.text, decl.span))
    }
}

/// The first child of `decl` that starts a line of its own.
fn own_line_child(text: &str, decl: &ModeDecl) -> Option<usize> {
    decl.sections
        .iter()
        .map(|s| node_range(text, s.node.span).start)
        .find(|&at| starts_line(text, at))
}

/// The indentation of `decl`'s children: that of its first child on a line of its own,
/// else the node's own indentation plus one `unit`.
fn child_indent(text: &str, decl: &ModeDecl, unit: &str) -> String {
    match own_line_child(text, decl) {
        Some(at) => indent_of(text, at).to_owned(),
        None => format!("{}{unit}", indent_of(text, decl.span.offset())),
    }
}

/// One level of indentation as the mode nodes `decls` of one file's `text` use it (what
/// their children add to their own indentation), else four spaces.
pub(crate) fn indent_unit<'r>(text: &str, decls: impl IntoIterator<Item = &'r ModeDecl>) -> String {
    decls
        .into_iter()
        .find_map(|d| {
            let child = indent_of(text, own_line_child(text, d)?);
            let unit = child.strip_prefix(indent_of(text, d.span.offset()))?;
            (!unit.is_empty()).then(|| unit.to_owned())
        })
        .unwrap_or_else(|| "    ".into())
}

/// Puts `src` (in `from`) into mode `dst` (in `to`, indented by `unit`): replaces `dst`'s
/// own node for the section, or appends it, with its comments, as `dst`'s last child.
pub(crate) fn put(from: &Text, src: &SectionDecl, to: &Text, dst: &ModeDecl, unit: &str) -> Splice {
    let source = from.extent(src);
    let base = indent_of(from.text, source.node.start);
    let nl = newline(to.text);
    if let Some(existing) = dst.section(src.name()) {
        let target = to.extent(existing);
        let indent = if target.own_line {
            indent_of(to.text, target.node.start).to_owned()
        } else {
            child_indent(to.text, dst, unit)
        };
        let piece = &from.text[source.node.clone()];
        let text = reindent(piece, source.node.start, &from.lexed, base, &indent);
        return Splice {
            range: target.node,
            text: with_newline(&text, nl),
        };
    }
    let indent = child_indent(to.text, dst, unit);
    let range = source.copy_range();
    let piece = reindent(
        &from.text[range.clone()],
        range.start,
        &from.lexed,
        base,
        &indent,
    );
    let body = with_newline(&format!("{indent}{piece}"), nl);
    let mode_indent = indent_of(to.text, dst.span.offset());
    match to.block(dst) {
        Some((_, close)) if starts_line(to.text, close) => {
            let at = line_start(to.text, close);
            Splice {
                range: at..at,
                text: format!("{body}{nl}"),
            }
        }
        Some((open, close)) => {
            let inner = &to.text[open + 1..close];
            let kept = inner.trim_end_matches([' ', '\t']).len();
            Splice {
                range: open + 1 + kept..close,
                text: format!("{nl}{body}{nl}{mode_indent}"),
            }
        }
        None => {
            let at = node_range(to.text, dst.span).end;
            Splice {
                range: at..at,
                text: format!(" {{{nl}{body}{nl}{mode_indent}}}"),
            }
        }
    }
}

/// `text` with its line breaks made `nl` (KDL reads any of them the same way, even in
/// multi-line strings).
fn with_newline(text: &str, nl: &str) -> String {
    let unix = text.replace("\r\n", "\n");
    if nl == "\n" {
        unix
    } else {
        unix.replace('\n', nl)
    }
}

/// Takes `section` out of mode `decl`. When nothing but blanks would be left in the
/// mode's children block, the block goes too (`group "Rome" { … }` becomes
/// `group "Rome"`), which undoes `put` into a mode that had no block.
pub(crate) fn remove(file: &Text, decl: &ModeDecl, section: &SectionDecl) -> Splice {
    let cut = file.extent(section).delete_range(file.text);
    if let Some((open, close)) = file.block(decl) {
        let left_empty = file.text[open + 1..cut.start].trim().is_empty()
            && file.text[cut.end..close].trim().is_empty();
        if left_empty && open < cut.start && cut.end <= close {
            let start = file.text[..open].trim_end_matches([' ', '\t']).len();
            return Splice {
                range: start..close + 1,
                text: String::new(),
            };
        }
    }
    Splice {
        range: cut,
        text: String::new(),
    }
}

/// Applies splices to `text`, from the end backwards so earlier offsets stay valid.
/// Overlapping splices are refused: they would mean two edits touch the same bytes.
pub(crate) fn apply(text: &str, mut splices: Vec<Splice>) -> Result<String, String> {
    splices.sort_by_key(|s| (s.range.start, s.range.end));
    for pair in splices.windows(2) {
        if pair[0].range.end > pair[1].range.start {
            return Err(format!(
                "two changes overlap at bytes {:?} and {:?}",
                pair[0].range, pair[1].range
            ));
        }
    }
    let mut out = text.to_owned();
    for s in splices.iter().rev() {
        if s.range.end > out.len()
            || !out.is_char_boundary(s.range.start)
            || !out.is_char_boundary(s.range.end)
        {
            return Err(format!(
                "a change falls outside the text at bytes {:?}",
                s.range
            ));
        }
        out.replace_range(s.range.clone(), &s.text);
    }
    Ok(out)
}
