//! Test helpers: run the real binary, render diagnostics deterministically.

use std::path::{Path, PathBuf};
use std::process::Output;

use strata::config::diagnostics::render;
use strata::validate::Checked;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under `examples/`.
pub fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

pub use crate::host::copy_dir;

/// Runs `strata` with `args` in `dir`, without colour and at a fixed width.
pub fn strata(dir: &Path, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("strata")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "80")
        .args(args)
        .output()
        .unwrap()
}

/// stdout and stderr of a run, as text, with the exit code, for snapshots.
pub fn transcript(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every diagnostic of a checked repo rendered without colour at width 80, then the
/// "and N more like this" line of each kind that was not shown.
pub fn rendered(checked: &Checked) -> String {
    let diags = &checked.diags;
    diags
        .problems()
        .iter()
        .map(|p| render(p, 80, false))
        .chain(diags.omitted().map(|o| format!("{}\n", o.line())))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Output text with line wrapping undone (words joined by single spaces, miette's `│`
/// gutters dropped), for `contains` checks on messages that hold paths of any length.
pub fn unwrapped(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` with regex metacharacters escaped, for insta's filters.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `insta::assert_snapshot!(name, text)` with the temporary directory `temp` written
/// `[TEMP]`. A macro, so the snapshot is named after the calling test module.
#[macro_export]
macro_rules! temp_snapshot {
    ($name:expr, $text:expr, $temp:expr) => {{
        let pattern = $crate::support::regex_escape(&$temp.display().to_string());
        insta::with_settings!({ filters => vec![(pattern.as_str(), "[TEMP]")] }, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}
