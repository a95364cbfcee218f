//! The one way Strata parses KDL text: nesting and size are checked first, by a scanner
//! that does not recurse, so a hostile file cannot overflow the stack of the recursive
//! KDL parser (or of Strata's own recursive walks over the tree) nor make it build a tree
//! too large to hold; then kdl parses it.

use std::sync::Arc;

use kdl::KdlDocument;
use miette::{Severity, SourceSpan};

use super::lex::lex;
use super::{Diagnostics, Problem, SourceFile};
use crate::model::{EntryValue, Key, Node};
use crate::text::thousands;

/// Blocks nested deeper than this are refused. Real sections nest a handful of levels;
/// opaque `xml-extra` content is capped at 48 below its section.
pub const MAX_DEPTH: usize = 64;

/// Texts holding more names and values than this are refused before they are parsed.
/// kdl keeps each value's formatting: a name or value costs up to ~900 bytes once parsed
/// and converted (1 MB of `1 1 1 …`, 500,000 values, took 424 MB), so this bounds the
/// peak of `strata validate` on one file to ~140 MB whatever it holds (181 MB at 200,000).
/// A real config has ~11 bytes a token, so this is ~1.6 MB of config in one file; a
/// machine's file holds a few hundred.
pub const MAX_TOKENS: usize = 150_000;

/// Why a text is not a KDL document Strata accepts.
#[derive(Debug, Clone)]
pub enum KdlTextError {
    /// A block nested deeper than [`MAX_DEPTH`] opens at this byte offset.
    TooDeep(usize),
    /// The text holds this many names and values, more than [`MAX_TOKENS`].
    TooMany(usize),
    /// kdl's own syntax errors.
    Syntax(kdl::KdlError),
}

impl std::fmt::Display for KdlTextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KdlTextError::TooDeep(_) => write!(f, "blocks nested deeper than {MAX_DEPTH} levels"),
            KdlTextError::TooMany(n) => write!(
                f,
                "{} names and values, more than the {} Strata parses in one text",
                thousands(*n as u64),
                thousands(MAX_TOKENS as u64)
            ),
            KdlTextError::Syntax(e) => {
                let detail: Vec<String> = e.diagnostics.iter().map(|d| d.to_string()).collect();
                write!(f, "{}", detail.join("; "))
            }
        }
    }
}

/// Parses KDL text, refusing excessive nesting and size before the parser sees it.
pub fn parse_kdl(text: &str) -> Result<KdlDocument, KdlTextError> {
    let lexed = lex(text);
    if lexed.tokens > MAX_TOKENS {
        return Err(KdlTextError::TooMany(lexed.tokens));
    }
    if let Some(at) = lexed.too_deep(MAX_DEPTH) {
        return Err(KdlTextError::TooDeep(at));
    }
    drop(lexed);
    text.parse().map_err(KdlTextError::Syntax)
}

/// Reports why a file did not parse: its diagnostics, and a count of the syntax errors
/// the parser found past [`kdl::MAX_ERRORS`] and did not record.
pub fn report(file: &Arc<SourceFile>, err: &KdlTextError, diags: &mut Diagnostics) {
    match err {
        KdlTextError::TooDeep(at) => {
            diags.push(
                Problem::error(
                    "strata::kdl::too-deep",
                    format!("blocks are nested deeper than {MAX_DEPTH} levels"),
                )
                .at(file, SourceSpan::from(*at..*at + 1), "too deep from here")
                .help("configs nest a handful of levels; this file is malformed or hostile"),
            );
        }
        KdlTextError::TooMany(_) => {
            diags.push(
                Problem::error("strata::kdl::too-large", format!("the file holds {err}"))
                    .at(file, SourceSpan::from(0..0), "in this file")
                    .help("split it into smaller files (one per machine, say); a file this dense is malformed or hostile"),
            );
        }
        KdlTextError::Syntax(err) => {
            for d in &err.diagnostics {
                let message = d.message.clone().unwrap_or_else(|| "invalid KDL".into());
                diags.push(
                    Problem::error(SYNTAX, format!("KDL syntax: {message}"))
                        .at(file, d.span, d.label.clone().unwrap_or_else(|| "here".into()))
                        .help(d.help.clone().unwrap_or_else(|| {
                            "see https://kdl.dev for the KDL v2 syntax; strings are quoted, booleans are #true and #false".into()
                        })),
                );
            }
            diags.omit(SYNTAX, Severity::Error, err.omitted);
        }
    }
}

/// The code of KDL syntax errors.
const SYNTAX: &str = "strata::kdl::syntax";

/// Reads an entry value from its KDL text: the store format before typed entries, where
/// every value was canonical KDL (and what tests write values in).
pub fn value_from_text(key: &Key, text: &str) -> Result<EntryValue, String> {
    let doc = parse_kdl(text).map_err(|_| format!("the value for {key} is not valid KDL"))?;
    let [node] = doc.nodes() else {
        return Err(format!("the value for {key} is not one node"));
    };
    EntryValue::from_node(key, Node::from_kdl(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_nesting_is_refused_without_recursion() {
        let depth = 100_000;
        let text = format!("a {}{}", "b { ".repeat(depth), "}".repeat(depth));
        assert!(matches!(parse_kdl(&text), Err(KdlTextError::TooDeep(_))));
    }

    #[test]
    fn hostile_escapes_are_counted_past_the_parsers_cap_not_recorded() {
        // Two errors per `\u{1F600}` after the bad escape: 800,000 for 400,000 of them,
        // held in full before (2.93 GB RSS for `validate --format json`).
        let text = format!("cluster \"x\\#{}", "\\u{1F600}".repeat(5_000));
        let Err(KdlTextError::Syntax(err)) = parse_kdl(&text) else {
            panic!("parsed")
        };
        assert_eq!(err.diagnostics.len(), kdl::MAX_ERRORS);
        assert_eq!(err.diagnostics.len() + err.omitted, 10_000);
        let file = SourceFile::new("h.kdl", text);
        let mut diags = Diagnostics::default();
        report(&file, &KdlTextError::Syntax(err), &mut diags);
        assert_eq!(diags.error_count(), 10_000);
        assert_eq!(
            diags.problems().len(),
            crate::config::diagnostics::MAX_PER_KIND
        );
        // The next parse on this thread starts counting afresh.
        assert!(parse_kdl("a 1").is_ok());
        let Err(KdlTextError::Syntax(err)) = parse_kdl("a \"x\\#") else {
            panic!("parsed")
        };
        assert_eq!(err.omitted, 0);
    }

    #[test]
    fn a_text_with_too_many_names_and_values_is_refused_before_parsing() {
        let dense = "1 ".repeat(MAX_TOKENS + 1);
        let Err(err) = parse_kdl(&dense) else {
            panic!("parsed")
        };
        assert!(matches!(err, KdlTextError::TooMany(n) if n == MAX_TOKENS + 1));
        assert_eq!(
            err.to_string(),
            "150,001 names and values, more than the 150,000 Strata parses in one text"
        );
        assert!(parse_kdl(&format!("a {}", "1 ".repeat(MAX_TOKENS - 1))).is_ok());
    }

    #[test]
    fn reasonable_nesting_parses() {
        let text = format!(
            "a {}{}",
            "b { ".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_kdl(&text).is_ok());
    }
}
