//! Problems found in a config repo, as miette diagnostics that carry their own file,
//! and the collection of all problems of one run.
//!
//! Rendering stays linear in the number of problems: a file indexes its lines once, and
//! miette reads the lines around a span through that index ([`SourceFile`] is the
//! [`SourceCode`]), not by scanning from the start of the file for every problem. Very
//! long lines (minified or hostile files) are shown as a window around the span, and
//! labels on them are cut short, so the snippet stays readable and miette never sees a
//! column past 65,535 (it panicked); the header keeps the true `file:line:col`.

use std::collections::{BTreeMap, HashMap};
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
            // Context lines stop before a long line: it would be shown whole.
            let short = |i: usize| self.line_end(i) - self.lines()[i].start <= LONG_LINE;
            let mut from_line = first;
            while from_line > first.saturating_sub(context_lines_before) && short(from_line - 1) {
                from_line -= 1;
            }
            let mut to_line = last;
            let last_line = (last + context_lines_after).min(self.lines().len() - 1);
            while to_line < last_line && short(to_line + 1) {
                to_line += 1;
            }
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

/// At most this many problems of one kind (one code) are kept in a run; the rest are
/// only counted, and reported as one "and N more like this" line. Hostile text can yield
/// a problem every few bytes: 800,000 of them took gigabytes to hold and render.
pub const MAX_PER_KIND: usize = 20;

/// At most this many problems are kept in a run, all kinds together.
pub const MAX_PROBLEMS: usize = 200;

/// Problems of one kind that were counted but not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Omitted {
    /// Their code.
    pub code: &'static str,
    /// How many of them are errors.
    pub errors: usize,
    /// How many of them are warnings.
    pub warnings: usize,
}

impl Omitted {
    /// How many there are.
    pub fn count(&self) -> usize {
        self.errors + self.warnings
    }

    /// The closing line for them: "and N more like this", with the code and the caps.
    pub fn line(&self) -> String {
        format!(
            "{}: and {} more like this, not shown (a run shows at most {MAX_PER_KIND} problems of one kind and {MAX_PROBLEMS} in all)",
            self.code,
            crate::text::thousands(self.count() as u64)
        )
    }
}

/// All problems found in one run, in the order they were found, capped as it collects
/// them: at most [`MAX_PER_KIND`] of one code and [`MAX_PROBLEMS`] in all are kept, so
/// holding and rendering them stays small whatever the input; the others are counted by
/// kind ([`Diagnostics::omitted`]) and still count as errors and warnings.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    problems: Vec<Problem>,
    /// How many problems of each code are kept.
    kept: HashMap<&'static str, usize>,
    /// What was counted and not kept, by code.
    omitted: BTreeMap<&'static str, Omitted>,
}

impl Diagnostics {
    /// Records a problem, or only counts it past the caps.
    pub fn push(&mut self, problem: Problem) {
        self.keep(problem);
    }

    /// [`Diagnostics::push`], saying whether the problem was kept (true) or only counted.
    pub fn keep(&mut self, problem: Problem) -> bool {
        let kept = self.kept.entry(problem.code).or_default();
        if *kept < MAX_PER_KIND && self.problems.len() < MAX_PROBLEMS {
            *kept += 1;
            self.problems.push(problem);
            return true;
        }
        self.omit(problem.code, problem.severity, 1);
        false
    }

    /// Records every problem of `problems` (see [`Diagnostics::push`]).
    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        for p in problems {
            self.push(p);
        }
    }

    /// Counts `n` problems of `code` that were found and not kept (a parser that stopped
    /// recording them, say).
    pub fn omit(&mut self, code: &'static str, severity: Severity, n: usize) {
        if n == 0 {
            return;
        }
        let omitted = self.omitted.entry(code).or_insert(Omitted {
            code,
            errors: 0,
            warnings: 0,
        });
        if severity == Severity::Error {
            omitted.errors += n;
        } else {
            omitted.warnings += n;
        }
    }

    /// Counts the problems `omitted` stands for as omitted here too.
    pub fn add_omitted(&mut self, omitted: &Omitted) {
        self.omit(omitted.code, Severity::Error, omitted.errors);
        self.omit(omitted.code, Severity::Warning, omitted.warnings);
    }

    /// Records everything `other` holds: its problems under this collection's caps, and
    /// its counts of omitted ones.
    pub fn append(&mut self, other: Diagnostics) {
        let (problems, omitted) = other.into_parts();
        self.extend(problems);
        for o in &omitted {
            self.add_omitted(o);
        }
    }

    /// The problems kept, in the order found (or sorted, after [`Diagnostics::sort`]).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The problems kept, taken out.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// The problems kept and the counts of those omitted, taken out.
    pub fn into_parts(self) -> (Vec<Problem>, Vec<Omitted>) {
        (self.problems, self.omitted.into_values().collect())
    }

    /// The problems counted and not kept, by code.
    pub fn omitted(&self) -> impl Iterator<Item = &Omitted> {
        self.omitted.values()
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty() && self.omitted.is_empty()
    }

    /// Number of errors (warnings excluded), those not kept included.
    pub fn error_count(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
            + self.omitted.values().map(|o| o.errors).sum::<usize>()
    }

    /// Number of warnings, those not kept included.
    pub fn warning_count(&self) -> usize {
        self.problems.iter().filter(|p| !p.is_error()).count()
            + self.omitted.values().map(|o| o.warnings).sum::<usize>()
    }

    /// True when there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error) || self.omitted.values().any(|o| o.errors > 0)
    }

    /// Makes the kept problems of `code` that `which` selects warnings with `help` (a
    /// flag that lets them through, say); with `omitted_too`, the ones of `code` only
    /// counted as well.
    pub fn downgrade(
        &mut self,
        code: &'static str,
        which: impl Fn(&Problem) -> bool,
        help: &str,
        omitted_too: bool,
    ) {
        for p in self
            .problems
            .iter_mut()
            .filter(|p| p.code == code && which(p))
        {
            p.severity = Severity::Warning;
            p.help = Some(help.to_owned());
        }
        if let (true, Some(o)) = (omitted_too, self.omitted.get_mut(code)) {
            o.warnings += std::mem::take(&mut o.errors);
        }
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
#[path = "diagnostics_tests.rs"]
mod tests;
