//! Problems found in a config repo, as miette diagnostics that carry their own file,
//! and the collection of all problems of one run.
//!
//! Rendering stays linear in the number of problems: a file indexes its lines once, and
//! miette reads the lines around a span through that index ([`SourceFile`] is the
//! [`SourceCode`]), not by scanning from the start of the file for every problem. Very
//! long lines (minified or hostile files) are shown as a window around the span, and
//! labels on them are cut short, so the snippet stays readable and miette never sees a
//! column past 65,535 (it panicked); the header keeps the true `file:line:col`.

use std::fmt;
use std::sync::{Arc, OnceLock};

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, Severity, SourceCode, SourceSpan,
    SpanContents,
};

/// A line longer than this many bytes is shown as a window around the span.
const LONG_LINE: usize = 400;

/// How many bytes of a long line are shown on each side of a span, and the most of a
/// label kept on one.
const WINDOW: usize = 120;

/// One file that was read, shared by every diagnostic that points into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown to users (relative to the repo root where possible).
    pub name: String,
    /// The whole text of the file.
    pub text: Arc<String>,
    /// The line index, built on first use.
    lines: OnceLock<Vec<Line>>,
}

/// Where a line starts, and where its first non-ASCII byte is (or its end), so that
/// columns on ASCII text are a subtraction.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    ascii_until: usize,
}

impl SourceFile {
    /// A file read from `name` with contents `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            name: name.into(),
            text: Arc::new(text.into()),
            lines: OnceLock::new(),
        })
    }

    fn lines(&self) -> &[Line] {
        self.lines.get_or_init(|| {
            let mut lines = vec![Line {
                start: 0,
                ascii_until: usize::MAX,
            }];
            for (i, &b) in self.text.as_bytes().iter().enumerate() {
                let last = lines.len() - 1;
                if b == b'\n' {
                    if lines[last].ascii_until == usize::MAX {
                        lines[last].ascii_until = i;
                    }
                    lines.push(Line {
                        start: i + 1,
                        ascii_until: usize::MAX,
                    });
                } else if !b.is_ascii() && lines[last].ascii_until == usize::MAX {
                    lines[last].ascii_until = i;
                }
            }
            let last = lines.len() - 1;
            if lines[last].ascii_until == usize::MAX {
                lines[last].ascii_until = self.text.len();
            }
            lines
        })
    }

    /// The 0-based index of the line holding byte `offset`.
    fn line_index(&self, offset: usize) -> usize {
        self.lines().partition_point(|l| l.start <= offset) - 1
    }

    /// The end of line `i`, its newline excluded.
    fn line_end(&self, i: usize) -> usize {
        self.lines()
            .get(i + 1)
            .map_or(self.text.len(), |next| next.start - 1)
    }

    /// `offset`, moved back to the start of the character it falls in.
    fn char_floor(&self, offset: usize) -> usize {
        let mut at = offset.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    /// `offset`, moved on to the end of the character it falls in.
    fn char_ceil(&self, offset: usize) -> usize {
        let mut at = offset.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at += 1;
        }
        at
    }

    /// The 0-based column (in characters) of a byte offset on line `i`.
    fn column(&self, i: usize, offset: usize) -> usize {
        let line = self.lines()[i];
        if offset <= line.ascii_until {
            offset - line.start
        } else {
            self.text[line.start..offset].chars().count()
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.char_floor(offset);
        let i = self.line_index(offset);
        (i + 1, self.column(i, offset) + 1)
    }

    /// True when a line of `span` is too long to be shown whole.
    fn on_long_line(&self, span: &SourceSpan) -> bool {
        let first = self.line_index(span.offset());
        let last = self.line_index(span.offset() + span.len().saturating_sub(1));
        (first..=last).any(|i| self.line_end(i) - self.lines()[i].start > LONG_LINE)
    }

    /// A label's span as shown: on a long line, at most [`WINDOW`] bytes of its first line.
    fn shown_span(&self, span: SourceSpan) -> SourceSpan {
        let start = self.char_floor(span.offset());
        if span.offset() + span.len() > self.text.len() || !self.on_long_line(&span) {
            return span;
        }
        let line_end = self.line_end(self.line_index(start));
        let end = self.char_floor((start + span.len()).min(start + WINDOW).min(line_end));
        SourceSpan::from(start..end.max(start))
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        if span.offset() + span.len() > self.text.len() {
            return Err(MietteError::OutOfBounds);
        }
        // A span may start or end inside a character (the XML reader's can): widen it to
        // whole characters before slicing.
        let start = self.char_floor(span.offset());
        let end = self.char_ceil(span.offset() + span.len());
        let first = self.line_index(start);
        let last = self.line_index(end.saturating_sub(1).max(start));
        let (data_start, data_end, line) = if self.on_long_line(span) {
            // Only the span's own line, cut to a window; a wider span (miette merging
            // two labels) is refused, and miette then shows them separately.
            if last != first || span.len() > 2 * WINDOW {
                return Err(MietteError::OutOfBounds);
            }
            let from = if context_lines_before == 0 {
                start
            } else {
                self.char_floor(start.saturating_sub(WINDOW).max(self.lines()[first].start))
            };
            let to = self.char_ceil((end + WINDOW).min(self.line_end(first)));
            (from, to, first)
        } else {
            let from_line = first.saturating_sub(context_lines_before);
            let to_line = (last + context_lines_after).min(self.lines().len() - 1);
            let from = if context_lines_before == 0 {
                start
            } else {
                self.lines()[from_line].start
            };
            let to = self
                .lines()
                .get(to_line + 1)
                .map_or(self.text.len(), |l| l.start);
            (from, to, self.line_index(from))
        };
        // As miette's own sources count it: the newlines from the start of the file to the
        // end of the snippet (miette compares it with the next label's line to merge
        // snippets).
        let line_count = self.line_index(data_end);
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.clone(),
                &self.text.as_bytes()[data_start..data_end],
                SourceSpan::from(data_start..data_end),
                line,
                self.column(line, data_start),
                line_count,
            )
            .with_language("kdl"),
        ))
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

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.at.as_ref().map(|l| &*l.file as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let at = self.at.as_ref()?;
        let file = &at.file;
        let primary =
            LabeledSpan::new_primary_with_span(Some(at.label.clone()), file.shown_span(at.span));
        let rest = self.also.iter().map(|(span, label)| {
            LabeledSpan::new_with_span(Some(label.clone()), file.shown_span(*span))
        });
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
        fn key(p: &Problem) -> (&str, usize, &str) {
            let (file, offset) =
                p.at.as_ref()
                    .map_or(("", 0), |l| (l.file.name.as_str(), l.span.offset()));
            (file, offset, p.code)
        }
        // Stable: problems at the same place keep the order they were found in.
        self.problems.sort_by(|a, b| key(a).cmp(&key(b)));
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
    fn a_snippet_reads_only_the_lines_around_its_span() {
        // What keeps rendering linear in the number of problems: each read is a few lines
        // found through the index, wherever the span is in the file.
        let text: String = (0..40_000).map(|i| format!("line{i} x\n")).collect();
        let f = SourceFile::new("a.kdl", text);
        let at = f.text.find("line30000 ").unwrap();
        let read = f.read_span(&SourceSpan::from(at..at + 4), 1, 1).unwrap();
        assert_eq!(read.line(), 29_999);
        assert_eq!(read.column(), 0);
        assert_eq!(
            std::str::from_utf8(read.data()).unwrap(),
            "line29999 x\nline30000 x\nline30001 x\n"
        );
        let header = f
            .read_span(&SourceSpan::from(at + 6..at + 9), 0, 0)
            .unwrap();
        assert_eq!((header.line(), header.column()), (30_000, 6));
        assert_eq!(f.line_col(at + 6), (30_001, 7));
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        let f = SourceFile::new("a.kdl", format!("a\n{}bogus é\n", "é".repeat(70_000)));
        let at = f.text.find("bogus").unwrap();
        let span = SourceSpan::from(at..at + 5);
        let read = f.read_span(&span, 1, 1).unwrap();
        assert!(read.data().len() <= 2 * WINDOW + 5, "{}", read.data().len());
        assert_eq!(read.line(), 1);
        assert_eq!(f.line_col(at), (2, 70_001));
        let header = f.read_span(&span, 0, 0).unwrap();
        assert_eq!(header.column(), 70_000);
        // A label over the whole line is cut short; a merge of far-apart labels refused.
        let whole = f.shown_span(SourceSpan::from(2..f.text.len() - 1));
        assert!(whole.len() <= WINDOW);
        assert!(f.read_span(&SourceSpan::from(2..at), 1, 1).is_err());
        let p = Problem::error("x::y", "bad").at(&f, span, "here");
        let out = render(&p, 80, false);
        assert!(out.contains("[a.kdl:2:70001]"), "{out}");
        assert!(out.len() < 2_000);
    }

    #[test]
    fn a_span_inside_a_character_renders() {
        // Found by fuzzing the XML reader: its span started inside a 3-byte character.
        let f = SourceFile::new("a.xml", "<!--'켂S-->\n");
        let p = Problem::error("x::y", "bad").at(&f, SourceSpan::from(6..7), "here");
        assert!(render(&p, 80, false).contains("[a.xml:1:6]"));
        assert_eq!(f.line_col(6), (1, 6));
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
