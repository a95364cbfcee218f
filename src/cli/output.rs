//! Writing results: human text (colour only on a terminal, never with NO_COLOR), JSON,
//! or GitHub workflow annotations; diagnostics go to stderr.

use std::io::{IsTerminal, Write};

use super::CliError;
use super::args::Format;
use super::json::{ErrorJson, RelatedJson};
use crate::config::diagnostics::render;
use crate::config::{Diagnostics, Problem};

/// Where and how a command writes.
pub struct Output {
    /// The requested format.
    pub format: Format,
    /// Whether human output may use colour.
    pub color: bool,
    /// Width to wrap diagnostics at.
    pub width: usize,
}

impl Output {
    /// Output for `format`, looking at the terminal and `NO_COLOR`.
    pub fn new(format: Format) -> Output {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        Output {
            format,
            color,
            width,
        }
    }

    /// Prints text to stdout, every encrypted secret in it masked
    /// ([`crate::secret::mask`]); a closed pipe is not an error.
    pub fn print(&self, text: &str) {
        let text = crate::secret::mask::mask_text(text);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Prints a value as pretty JSON on stdout (a document of [`super::json`], or a
    /// `serde_json::Value` where a command's output has no type yet).
    /// Every encrypted secret in it is masked ([`crate::secret::mask`]).
    pub fn json(&self, value: &impl serde::Serialize) {
        let mut value = serde_json::to_value(value).unwrap_or_default();
        crate::secret::mask::mask_json(&mut value);
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        self.print(&format!("{text}\n"));
    }

    /// Prints a fatal error as a diagnostic on stderr (or as JSON on stdout, with its
    /// kind).
    pub fn error(&self, err: &CliError) {
        let diag = err.diagnostic.as_ref();
        if self.format == Format::Json {
            // The diagnostics it carries (what an edit would break, say), each as the
            // error itself is written.
            let related = diag
                .related()
                .into_iter()
                .flatten()
                .map(|d| RelatedJson {
                    error: d.to_string(),
                    code: d.code().map(|c| c.to_string()),
                    help: d.help().map(|h| h.to_string()),
                })
                .collect();
            let value = ErrorJson {
                error: diag.to_string(),
                kind: err.kind.as_str().to_owned(),
                code: diag.code().map(|c| c.to_string()),
                help: diag.help().map(|h| h.to_string()),
                related,
            };
            self.json(&value);
            return;
        }
        let theme = if self.color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let mut text = String::new();
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(self.width);
        let _ = handler.render_report(&mut text, diag);
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    /// Prints diagnostics to stderr (human), as JSON, or as GitHub annotations.
    pub fn diagnostics(&self, diags: &Diagnostics) {
        match self.format {
            Format::Human => {
                let mut err = std::io::stderr().lock();
                for p in diags.problems() {
                    let _ = err.write_all(render(p, self.width, self.color).as_bytes());
                }
                for o in diags.omitted() {
                    let _ = writeln!(err, "{}", o.line());
                }
            }
            Format::Json => {}
            Format::Github => {
                let mut text = String::new();
                for p in diags.problems() {
                    text.push_str(&github_annotation(p));
                    text.push('\n');
                }
                for o in diags.omitted() {
                    let kind = if o.errors > 0 { "error" } else { "warning" };
                    text.push_str(&format!(
                        "::{kind} title={}::{}\n",
                        escape_property(o.code),
                        escape_data(&o.line())
                    ));
                }
                self.print(&text);
            }
        }
    }
}

/// A problem as a GitHub Actions workflow command.
pub fn github_annotation(p: &Problem) -> String {
    let kind = if p.is_error() { "error" } else { "warning" };
    let mut props = Vec::new();
    if let (Some(at), Some((line, col))) = (&p.at, p.line_col()) {
        props.push(format!("file={}", escape_property(&at.file.name)));
        props.push(format!("line={line}"));
        props.push(format!("col={col}"));
    }
    props.push(format!("title={}", escape_property(p.code)));
    let mut message = p.message.clone();
    if let Some(help) = &p.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!("::{kind} {}::{}", props.join(","), escape_data(&message))
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
