//! The command line: arguments, one module per command, and the one error boundary that
//! turns outcomes into exit codes.

mod agent;
mod agent_args;
mod apply;
mod args;
mod cluster;
mod connect;
mod edit;
mod export_xml;
mod files;
mod import_xml;
mod log;
mod output;
mod pin;
mod plan;
mod show;
mod validate;
mod where_;
mod xml_args;

use std::process::ExitCode;

pub use args::{Cli, Command};
use clap::Parser;

/// How a command ended, mapped to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success, nothing to report (exit 0).
    Ok,
    /// The input was invalid or the command was refused (exit 1).
    Failed,
    /// Success with changes or drift to report (exit 2), for plan and check.
    Changes,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        match o {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::Changes => ExitCode::from(2),
        }
    }
}

/// Parses the process arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = output::Output::new(cli.format);
    let result = match cli.command {
        Command::Validate(a) => validate::run(a, &out),
        Command::Show(a) => show::run(a, &out),
        Command::Where(a) => where_::run(a, &out),
        Command::Copy(a) => edit::copy(a, &out),
        Command::Move(a) => edit::move_(a, &out),
        Command::Delete(a) => edit::delete(a, &out),
        Command::Agent(a) => agent::run_agent(a),
        Command::Cluster(a) => cluster::run(a, &out),
        Command::Plan(a) => plan::run(a, &out),
        Command::Apply(a) => apply::run(a, &out),
        Command::Log(a) => log::run(a, &out),
        Command::Rollback(a) => log::rollback(a, &out),
        Command::ImportXml(a) => import_xml::run(a, &out),
        Command::ExportXml(a) => export_xml::run(a, &out),
    };
    match result {
        Ok(outcome) => outcome.into(),
        Err(err) => {
            out.error(err.as_ref());
            ExitCode::from(1)
        }
    }
}

/// An error that ends a command: printed as a diagnostic, exit code 1.
pub type CliError = Box<dyn miette::Diagnostic + Send + Sync + 'static>;

/// A plain error with a code and a help line.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(strata::cli))]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}

impl Failure {
    /// A failure with a message and a help line, boxed as the CLI's error type.
    #[allow(clippy::new_ret_no_self)] // Callers always want the boxed form.
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> CliError {
        Box::new(Failure {
            message: message.into(),
            help: Some(help.into()),
        })
    }
}

/// Loads and validates the repo at `dir` for a command that needs a valid one: warnings
/// are printed, errors are printed and end the command.
fn load_valid(
    dir: &std::path::Path,
    out: &output::Output,
) -> Result<crate::validate::Checked, CliError> {
    let checked =
        crate::validate::check_paths(&[dir.to_path_buf()]).map_err(|e| Box::new(e) as CliError)?;
    if checked.diags.has_errors() {
        let human = output::Output {
            format: args::Format::Human,
            color: out.color,
            width: out.width,
        };
        human.diagnostics(&checked.diags);
        return Err(Failure::new(
            format!(
                "{} is not a valid config repo ({} errors)",
                dir.display(),
                checked.diags.error_count()
            ),
            "fix the problems above; `strata validate` reports them all",
        ));
    }
    Ok(checked)
}
