//! Asking before a command changes a live cluster, as Terraform does: the plan has been
//! shown, then "Do you want to perform these actions?" on the terminal, and only `yes`
//! goes ahead. `--yes` skips the question. Without a terminal to ask on (CI, cron, a
//! script) and without `--yes`, the command refuses and names `--yes`; so does
//! `--format json`, whose output is for programs.

use super::args::Format;
use super::output::Output;
use super::{CliError, Failure};

/// What is about to happen, for the question and the refusals.
pub struct Question<'a> {
    /// The command: `apply`, `rollback`.
    pub command: &'a str,
    /// What it does, past tense, for "not applied": `applied`, `rolled back`.
    pub done: &'a str,
    /// The machine whose agent will commit it.
    pub through: &'a str,
}

/// The question, as the terminal shows it.
pub fn prompt(q: &Question) -> String {
    format!(
        "\nDo you want to perform these actions (through {})?\n  \
         Only 'yes' will be accepted to approve.\n\n  Enter a value: ",
        q.through
    )
}

/// Goes ahead when `yes` was given or the user answers `yes` on the terminal; else
/// refuses, with nothing written.
pub fn confirm(q: &Question, yes: bool, out: &Output) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    let unasked = |why: String| {
        Failure::refused(
            format!("not {}: {why}, and --yes was not given", q.done),
            format!(
                "nothing was written; review the plan, then run `strata {} … --yes` to go ahead without the question",
                q.command
            ),
        )
    };
    if out.format == Format::Json {
        return Err(unasked("--format json asks no question".into()));
    }
    if !super::tty::attended() {
        return Err(unasked("there is no terminal to ask on".into()));
    }
    let answer = super::tty::ask(&prompt(q), true)
        .map_err(|e| unasked(format!("the terminal cannot be asked ({e})")))?;
    if answer.trim() == "yes" {
        return Ok(());
    }
    Err(Failure::refused(
        format!("not {}: the answer was not `yes`", q.done),
        "nothing was written",
    ))
}
