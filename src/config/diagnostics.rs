//! Problems found in a config repo, as miette diagnostics that carry their own file,
//! and the collection of all problems of one run.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceSpan};

/// One file that was read, shared by every diagnostic that points into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown to users (relative to the repo root where possible).
    pub name: String,
    /// The whole text of the file.
    pub text: Arc<String>,
}

impl SourceFile {
    /// A file read from `name` with contents `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            name: name.into(),
            text: Arc::new(text.into()),
        })
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

/// A place in a file, with the label shown under it.
#[derive(Debug, Clone)]
pub struct Location {
    /// The file.
    pub file: Arc<SourceFile>,
    /// The bytes the label points at.
    pub span: SourceSpan,
    /// What the label says.
    pub label: String,
}

/// One problem: an error or a warning, with a stable code, a message, a help line and,
/// where it has one, the place in a file it is about.
#[derive(Debug, Clone)]
pub struct Problem {
    /// A stable code, such as `strata::section::unknown`.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// One sentence saying what is wrong, without a trailing period.
    pub message: String,
    /// One line saying how to fix it.
    pub help: Option<String>,
    /// Where it is.
    pub at: Option<Location>,
    /// Further labelled places in the same file (an earlier definition, say).
    pub also: Vec<(SourceSpan, String)>,
    /// `NamedSource` built once from `at`, which miette renders.
    source: Option<NamedSource<Arc<String>>>,
}

impl Problem {
    /// An error with a code and a message.
    pub fn error(code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            code,
            severity: Severity::Error,
            message: message.into(),
            help: None,
            at: None,
            also: Vec::new(),
            source: None,
        }
    }

    /// A warning with a code and a message.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, message)
        }
    }

    /// Points the problem at `span` in `file`, with a label.
    pub fn at(
        mut self,
        file: &Arc<SourceFile>,
        span: SourceSpan,
        label: impl Into<String>,
    ) -> Self {
        self.source =
            Some(NamedSource::new(file.name.clone(), file.text.clone()).with_language("kdl"));
        self.at = Some(Location {
            file: file.clone(),
            span,
            label: label.into(),
        });
        self
    }

    /// Adds a second label in the same file.
    pub fn also(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.also.push((span, label.into()));
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for errors, false for warnings and advice.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The 1-based line and column the problem points at, if it points anywhere.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        self.at.as_ref().map(|l| l.file.line_col(l.span.offset()))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let at = self.at.as_ref()?;
        let primary = LabeledSpan::new_primary_with_span(Some(at.label.clone()), at.span);
        let rest = self
            .also
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(rest)))
    }
}

/// All problems found in one run, in the order they were found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    /// The problems.
    pub problems: Vec<Problem>,
}

impl Diagnostics {
    /// Records a problem.
    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Number of errors (warnings excluded).
    pub fn error_count(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.problems.len() - self.error_count()
    }

    /// True when there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// Sorts problems by file and position, errors and warnings mixed, so output is stable.
    pub fn sort(&mut self) {
        self.problems.sort_by(|a, b| {
            let key = |p: &Problem| {
                p.at.as_ref()
                    .map(|l| (l.file.name.clone(), l.span.offset()))
                    .unwrap_or_default()
            };
            key(a).cmp(&key(b)).then_with(|| a.code.cmp(b.code))
        });
    }
}

/// Renders one problem as miette's graphical report, `width` columns wide, with or
/// without colour.
pub fn render(problem: &Problem, width: usize, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = handler.render_report(&mut out, problem);
    out
}

/// Suggests the candidate closest to `name`, if one is close enough to be a typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let f = SourceFile::new("a.kdl", "one\ntwé x\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(4), (2, 1));
        assert_eq!(f.line_col(9), (2, 5));
    }

    #[test]
    fn near_misses_are_suggested() {
        assert_eq!(
            did_you_mean("smtp-route", ["smtp-routes", "dns"]),
            Some("smtp-routes")
        );
        assert_eq!(did_you_mean("zzz", ["smtp-routes", "dns"]), None);
    }
}
