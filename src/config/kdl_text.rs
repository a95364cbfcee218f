//! The one way Strata parses KDL text: nesting is checked first, without recursion, so a
//! hostile file cannot overflow the stack of the recursive KDL parser (or of Strata's own
//! recursive walks over the tree); then kdl parses it.

use std::sync::Arc;

use kdl::KdlDocument;
use miette::SourceSpan;

use super::lex::lex;
use super::{Problem, SourceFile};

/// Blocks nested deeper than this are refused. Real sections nest a handful of levels;
/// opaque `xml-extra` content is capped at 48 below its section.
pub const MAX_DEPTH: usize = 64;

/// Why a text is not a KDL document Strata accepts.
#[derive(Debug, Clone)]
pub enum KdlTextError {
    /// A block nested deeper than [`MAX_DEPTH`] opens at this byte offset.
    TooDeep(usize),
    /// kdl's own syntax errors.
    Syntax(kdl::KdlError),
}

impl std::fmt::Display for KdlTextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KdlTextError::TooDeep(_) => write!(f, "blocks nested deeper than {MAX_DEPTH} levels"),
            KdlTextError::Syntax(e) => {
                let detail: Vec<String> = e.diagnostics.iter().map(|d| d.to_string()).collect();
                write!(f, "{}", detail.join("; "))
            }
        }
    }
}

/// Parses KDL text, refusing excessive nesting before the recursive parser sees it.
pub fn parse_kdl(text: &str) -> Result<KdlDocument, KdlTextError> {
    if let Some(at) = lex(text).too_deep(MAX_DEPTH) {
        return Err(KdlTextError::TooDeep(at));
    }
    text.parse().map_err(KdlTextError::Syntax)
}

/// The diagnostics for a file that did not parse.
pub fn problems(file: &Arc<SourceFile>, err: &KdlTextError) -> Vec<Problem> {
    match err {
        KdlTextError::TooDeep(at) => vec![
            Problem::error(
                "strata::kdl::too-deep",
                format!("blocks are nested deeper than {MAX_DEPTH} levels"),
            )
            .at(file, SourceSpan::from(*at..*at + 1), "too deep from here")
            .help("configs nest a handful of levels; this file is malformed or hostile"),
        ],
        KdlTextError::Syntax(err) => err
            .diagnostics
            .iter()
            .map(|d| {
                let message = d.message.clone().unwrap_or_else(|| "invalid KDL".into());
                Problem::error("strata::kdl::syntax", format!("KDL syntax: {message}"))
                    .at(file, d.span, d.label.clone().unwrap_or_else(|| "here".into()))
                    .help(d.help.clone().unwrap_or_else(|| {
                        "see https://kdl.dev for the KDL v2 syntax; strings are quoted, booleans are #true and #false".into()
                    }))
            })
            .collect(),
    }
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
    fn reasonable_nesting_parses() {
        let text = format!(
            "a {}{}",
            "b { ".repeat(MAX_DEPTH - 1),
            "}".repeat(MAX_DEPTH - 1)
        );
        assert!(parse_kdl(&text).is_ok());
    }
}
