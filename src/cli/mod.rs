//! The command line: arguments, one module per command, and the one error boundary that
//! turns outcomes into exit codes.

mod agent;
mod agent_args;
mod apply;
mod args;
mod check;
mod cluster;
mod cluster_admin;
mod cluster_mesh;
mod confirm;
mod connect;
mod edit;
mod export_xml;
mod files;
mod git_hook;
mod identity;
mod import_xml;
pub mod json;
mod log;
mod output;
mod passphrase;
mod plan;
mod propagation;
mod repair;
mod secret;
mod shell_tools;
mod show;
mod ssh_config;
mod status;
mod tty;
mod validate;
mod where_;
mod xml_args;

use std::process::ExitCode;

pub use args::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};

/// How a command ended when it did not fail, mapped to the process exit code in
/// [`exit_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success, nothing to report (exit 0).
    Ok,
    /// The input was invalid, reported as the command's result (exit 1): `validate`;
    /// `status` when the sync status is unknown.
    Failed,
    /// Success with changes or drift to report (exit 2), for plan and check.
    Changes,
}

/// Why a command failed; decides its exit code (see [`exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// What the user gave is wrong: an invalid repo, a missing file, a bad option value,
    /// an unpinned host key (exit 1).
    Invalid,
    /// The agent, or the client's host-key pin, refused: a wrong key or passphrase, a
    /// changed host key, a role that may not, a stale plan, a failing hook (exit 1).
    Refused,
    /// No answer could be had from the agent: it cannot be reached, does not speak
    /// Strata's protocol, or the connection was lost before it answered — then whether
    /// the request took effect is unknown (exit 69).
    Unreachable,
    /// The agent did not check the passphrase now: failed logins from this address
    /// earned a delay that has not passed; the message says when to retry (exit 75).
    Delayed,
    /// The command line does not parse (exit 64).
    Usage,
    /// Strata itself is wrong: a panic, an answer that makes no sense (exit 70).
    Bug,
}

/// The exit codes, all in one place. 0, 1 and 2 are the commands' answers; the codes
/// for failures that are not an answer are the BSD `sysexits.h` ones with those
/// meanings (EX_USAGE, EX_UNAVAILABLE, EX_TEMPFAIL, EX_SOFTWARE): far from the small codes, so that
/// a typo (clap's default is 2) never reads as "plan: changes present", and new
/// answers (`status`, `check`) can take small codes without clashing.
pub mod exit {
    /// Success; for plan: no changes.
    pub const OK: u8 = 0;
    /// Invalid input, or refused.
    pub const FAILED: u8 = 1;
    /// plan: changes present.
    pub const CHANGES: u8 = 2;
    /// The command line does not parse.
    pub const USAGE: u8 = 64;
    /// The agent is unreachable, or the connection was lost mid-request.
    pub const UNREACHABLE: u8 = 69;
    /// The login was delayed after failed attempts: retry in the seconds the message says.
    pub const DELAYED: u8 = 75;
    /// A bug in Strata.
    pub const BUG: u8 = 70;
}

/// The exit code of a command's result: the one mapping from outcomes and error kinds
/// to exit codes.
pub fn exit_code(result: Result<Outcome, ErrorKind>) -> u8 {
    match result {
        Ok(Outcome::Ok) => exit::OK,
        Ok(Outcome::Failed) | Err(ErrorKind::Invalid | ErrorKind::Refused) => exit::FAILED,
        Ok(Outcome::Changes) => exit::CHANGES,
        Err(ErrorKind::Usage) => exit::USAGE,
        Err(ErrorKind::Unreachable) => exit::UNREACHABLE,
        Err(ErrorKind::Delayed) => exit::DELAYED,
        Err(ErrorKind::Bug) => exit::BUG,
    }
}

/// Each command's own exit codes, shown at the end of its `-h` and `--help` (with the ones
/// every command shares) and listed in the command tables of docs/commands.md. A nested command
/// (`cluster list`) has the codes of its parent unless it is listed itself.
const COMMAND_EXITS: &[(&str, &str)] = &[
    ("validate", "0 valid (warnings allowed), 1 invalid"),
    ("show", "0 shown, 1 invalid repo or input"),
    ("where", "0 shown, 1 invalid repo or input"),
    ("copy", "0 copied, 1 invalid repo or input, or refused"),
    ("move", "0 moved, 1 invalid repo or input, or refused"),
    ("delete", "0 deleted, 1 invalid repo or input, or refused"),
    ("agent", "0 stopped cleanly, 1 cannot start"),
    (
        "cluster",
        "0 done, 1 invalid input or refused, 69 unreachable, 75 login delayed",
    ),
    (
        "cluster join",
        "0 joined, 1 refused (wrong fingerprint, passphrase or key; another version; already in a cluster), 69 unreachable, 75 login delayed",
    ),
    (
        "cluster repair",
        "0 repaired, 1 refused (an agent runs on the state dir, not a member, another cluster, digests differ: nothing changed), 69 unreachable, 75 login delayed",
    ),
    (
        "cluster passwd",
        "0 set (or already set), 1 refused (not an administrator, an empty passphrase, a user the repo does not declare), 69 unreachable, 75 login delayed",
    ),
    (
        "cluster list",
        "0 listed, 1 refused, 69 unreachable, 75 login delayed",
    ),
    (
        "cluster connstatus",
        "0 shown, 1 refused, 69 unreachable, 75 login delayed",
    ),
    (
        "cluster disconnect",
        "0 done, 1 refused, 69 unreachable, 75 login delayed",
    ),
    (
        "cluster reconnect",
        "0 done, 1 refused, 69 unreachable, 75 login delayed",
    ),
    (
        "cluster remove",
        "0 removed, 1 refused, 69 unreachable, 75 login delayed",
    ),
    (
        "cluster prepjoin print",
        "0 shown, 1 refused, 69 unreachable, 75 login delayed",
    ),
    ("hash-passphrase", "0 printed, 1 invalid input"),
    (
        "rollout",
        "0 done, 1 refused (no such rollout, or not in a state for it), 69 unreachable, 75 login delayed",
    ),
    (
        "confirm",
        "0 confirmed (or confirmed already), 1 refused (nothing waits, or it was reverted already), 69 unreachable, 75 login delayed",
    ),
    ("git-hook", "0 push accepted, 1 push refused"),
    (
        "plan",
        "0 no changes, 2 changes, 1 invalid repo or input or refused, 69 unreachable, 75 login delayed",
    ),
    (
        "apply",
        "0 applied (or nothing to do), 1 invalid input or refused, 69 unreachable, 75 login delayed",
    ),
    (
        "log",
        "0 shown, 1 invalid input or refused, 69 unreachable, 75 login delayed",
    ),
    (
        "check",
        "0 consistent, 2 inconsistency, drift or a Degraded member, 1 invalid input or refused, 69 unreachable, 75 login delayed",
    ),
    (
        "status",
        "0 synced, 2 out of sync, 1 unknown or error, 69 unreachable, 75 login delayed",
    ),
    (
        "rollback",
        "0 rolled back, 1 invalid input or refused, 69 unreachable, 75 login delayed",
    ),
    (
        "import-xml",
        "0 imported, 1 invalid file or repo, or refused",
    ),
    ("export-xml", "0 written, 1 invalid repo or input"),
    (
        "secret",
        "0 done, 1 invalid input or refused, 69 unreachable, 75 login delayed",
    ),
    ("completions", "0 printed"),
    ("manpages", "0 written, 1 cannot write DIR"),
];

/// What every command may also exit with.
const COMMON_EXITS: &str = "64 the command line does not parse, 70 a bug in Strata";

/// What 69 and 75 mean, for the commands that talk to an agent.
const UNREACHABLE_HELP: &str = "69 (unreachable): the agent could not be reached or does not \
    speak Strata's protocol, or the connection was lost before it answered; then whether the \
    request took effect is unknown: check `strata log`. 75 (login delayed): failed \
    passphrases from this address earned a delay, and the agent did not check this one; the \
    message says in how many seconds to retry";

/// The clap command with every subcommand's exit codes added to its `--help`.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command().after_long_help(
        "Exit codes:\n  \
         0   success (plan: no changes)\n  \
         1   invalid input, or refused\n  \
         2   changes present (plan)\n  \
         64  the command line does not parse\n  \
         69  the agent is unreachable, or the connection was lost before it answered\n      \
             (then whether the request took effect is unknown: check `strata log`)\n  \
         70  a bug in Strata\n  \
         75  login delayed after failed attempts: retry in the seconds the message says",
    );
    for (name, codes) in COMMAND_EXITS.iter().filter(|(n, _)| !n.contains(' ')) {
        cmd = cmd.mut_subcommand(name, |sub| with_exit_codes(sub, name, codes));
    }
    cmd
}

/// `sub` (called `path`, as `cluster prepjoin add`) and its own subcommands, each with its
/// exit codes ([`COMMAND_EXITS`], else `inherited`) and the codes every command shares, at
/// the end of both `-h` and `--help`.
fn with_exit_codes(sub: clap::Command, path: &str, inherited: &str) -> clap::Command {
    let codes = COMMAND_EXITS
        .iter()
        .find(|(n, _)| *n == path)
        .map_or(inherited, |(_, c)| *c);
    let line = format!("Exit codes: {codes}; {COMMON_EXITS}");
    let mut help = sub
        .get_after_long_help()
        .map(|h| format!("{h}\n\n"))
        .unwrap_or_default();
    help.push_str(&line);
    if codes.contains("69") {
        help.push_str(&format!("\n\n{UNREACHABLE_HELP}"));
    }
    sub.after_help(line)
        .after_long_help(help)
        .mut_subcommands(|nested| {
            let path = format!("{path} {}", nested.get_name());
            with_exit_codes(nested, &path, codes)
        })
}

/// Parses the process arguments and runs the command. The error boundary: every failure
/// is printed once, here, and its kind becomes the exit code; a panic is a bug.
pub fn main() -> ExitCode {
    let cli = match command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are not errors.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    // `github` annotations exist for `validate` only; another command would print
    // something else and a CI step would not notice: refuse it as the usage error it is.
    if cli.format == args::Format::Github && !matches!(cli.command, Command::Validate(_)) {
        let err = command().error(
            clap::error::ErrorKind::InvalidValue,
            "`--format github` is only for `strata validate`; give `--format human` or `--format json`",
        );
        let _ = err.print();
        return ExitCode::from(exit::USAGE);
    }
    let out = output::Output::new(cli.format);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli.command, &out)))
        .unwrap_or_else(|_| {
            // The panic message was printed by the panic hook.
            Err(Failure::bug("Strata panicked (see the message above)"))
        });
    let code = exit_code(result.map_err(|err| {
        out.error(&err);
        err.kind
    }));
    ExitCode::from(code)
}

fn run(command: Command, out: &output::Output) -> Result<Outcome, CliError> {
    match command {
        Command::Validate(a) => validate::run(a, out),
        Command::Show(a) => show::run(a, out),
        Command::Where(a) => where_::run(a, out),
        Command::Copy(a) => edit::copy(a, out),
        Command::Move(a) => edit::move_(a, out),
        Command::Delete(a) => edit::delete(a, out),
        Command::Agent(a) => agent::run_agent(a),
        Command::Cluster(a) => cluster::run(a, out),
        Command::HashPassphrase(a) => passphrase::hash(a, out),
        Command::GitHook(a) => git_hook::run(a, out),
        Command::Plan(a) => plan::run(a, out),
        Command::Apply(a) => apply::run(a, out),
        Command::Log(a) => log::run(a, out),
        Command::Check(a) => check::run(a, out),
        Command::Status(a) => status::run(a, out),
        Command::Rollback(a) => log::rollback(a, out),
        Command::Confirm(a) => cluster_admin::confirm(a, out),
        Command::Rollout(a) => cluster_admin::rollout(a.command, out),
        Command::ImportXml(a) => import_xml::run(a, out),
        Command::ExportXml(a) => export_xml::run(a, out),
        Command::Secret(a) => secret::run(a, out),
        Command::Completions(a) => shell_tools::completions(a, out),
        Command::Manpages(a) => shell_tools::manpages(a, out),
    }
}

/// An error that ends a command: a diagnostic to print and the kind of failure, which
/// decides the exit code.
#[derive(Debug)]
pub struct CliError {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// What to print.
    pub diagnostic: Box<dyn miette::Diagnostic + Send + Sync + 'static>,
}

impl CliError {
    /// `diagnostic` as a failure of `kind`.
    pub fn new(
        kind: ErrorKind,
        diagnostic: impl miette::Diagnostic + Send + Sync + 'static,
    ) -> CliError {
        CliError {
            kind,
            diagnostic: Box::new(diagnostic),
        }
    }

    /// `diagnostic` as invalid input.
    pub fn invalid(diagnostic: impl miette::Diagnostic + Send + Sync + 'static) -> CliError {
        CliError::new(ErrorKind::Invalid, diagnostic)
    }
}

impl ErrorKind {
    /// The kind's name in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::Refused => "refused",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Delayed => "delayed",
            ErrorKind::Usage => "usage",
            ErrorKind::Bug => "bug",
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.diagnostic.fmt(f)
    }
}

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
    /// A failure of `kind` with a message and a help line.
    pub fn of(kind: ErrorKind, message: impl Into<String>, help: impl Into<String>) -> CliError {
        CliError::new(
            kind,
            Failure {
                message: message.into(),
                help: Some(help.into()),
            },
        )
    }

    /// Invalid input, with a message and a help line.
    #[allow(clippy::new_ret_no_self)] // Callers always want the CLI's error type.
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> CliError {
        Failure::of(ErrorKind::Invalid, message, help)
    }

    /// A refusal, with a message and a help line.
    pub fn refused(message: impl Into<String>, help: impl Into<String>) -> CliError {
        Failure::of(ErrorKind::Refused, message, help)
    }

    /// A bug in Strata.
    pub fn bug(message: impl Into<String>) -> CliError {
        Failure::of(
            ErrorKind::Bug,
            message,
            "this is a bug in Strata; please report it with the command that showed it",
        )
    }
}

/// Loads and validates the repo at `dir` for a command that needs a valid one: warnings
/// are printed, errors are printed and end the command.
fn load_valid(
    dir: &std::path::Path,
    out: &output::Output,
) -> Result<crate::validate::Checked, CliError> {
    let checked = crate::validate::check_paths(&[dir.to_path_buf()]).map_err(CliError::invalid)?;
    if checked.diags.has_errors() {
        let human = output::Output {
            format: args::Format::Human,
            color: out.color,
            width: out.width,
        };
        human.diagnostics(&checked.diags);
        return Err(Failure::new(
            format!(
                "{} is not a valid config repo ({})",
                dir.display(),
                crate::text::count(checked.diags.error_count(), "error")
            ),
            "fix the problems above; `strata validate` reports them all",
        ));
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_distinct_exit_codes_and_keep_the_answers() {
        assert_eq!(exit_code(Ok(Outcome::Ok)), 0);
        assert_eq!(exit_code(Ok(Outcome::Failed)), 1);
        assert_eq!(exit_code(Ok(Outcome::Changes)), 2);
        assert_eq!(exit_code(Err(ErrorKind::Invalid)), 1);
        assert_eq!(exit_code(Err(ErrorKind::Refused)), 1);
        assert_eq!(exit_code(Err(ErrorKind::Usage)), 64);
        assert_eq!(exit_code(Err(ErrorKind::Unreachable)), 69);
        assert_eq!(exit_code(Err(ErrorKind::Delayed)), 75);
        assert_eq!(exit_code(Err(ErrorKind::Bug)), 70);
    }

    #[test]
    fn every_command_documents_its_exit_codes_in_help_and_readme() {
        let cmd = command();
        let readme = include_str!("../../docs/commands.md");
        // The `Exit codes:` line as a rendered help shows it (wrapping joined up).
        fn exit_line(rendered: String) -> String {
            let flat = rendered.split_whitespace().collect::<Vec<_>>().join(" ");
            let at = flat.find("Exit codes: ").expect("an Exit codes line");
            let end = flat[at..]
                .find("a bug in Strata")
                .expect("the common codes")
                + at;
            flat[at..end].to_owned()
        }
        let mut stack: Vec<(String, String, clap::Command)> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .map(|s| (s.get_name().to_owned(), String::new(), s.clone()))
            .collect();
        let mut walked = 0;
        while let Some((path, inherited, mut sub)) = stack.pop() {
            let codes = COMMAND_EXITS
                .iter()
                .find(|(n, _)| *n == path)
                .map(|(_, c)| (*c).to_owned())
                .unwrap_or_else(|| {
                    assert!(path.contains(' '), "no exit codes for `{path}`");
                    inherited.clone()
                });
            let short = exit_line(sub.render_help().to_string());
            let long = exit_line(sub.render_long_help().to_string());
            assert_eq!(short, long, "`{path}`: -h and --help disagree");
            assert!(
                short.starts_with(&format!("Exit codes: {codes}; 64")),
                "`{path}`: {short}"
            );
            if !path.contains(' ') {
                assert!(
                    readme.contains(&format!("| {codes} |")),
                    "docs/commands.md's command table does not give `{path}` the exit codes `{codes}`"
                );
            }
            for n in sub.get_subcommands().filter(|n| n.get_name() != "help") {
                stack.push((format!("{path} {}", n.get_name()), codes.clone(), n.clone()));
            }
            walked += 1;
        }
        assert!(walked > 30, "only {walked} commands walked");
    }
}
