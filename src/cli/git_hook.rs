//! `strata git-hook pre-receive`: the config repo's hook on the agent
//! ([`crate::agent::git_serve`]). For a push to the deployed branch it reads the pushed
//! commit from git's quarantine (nothing is in the repository yet), validates it with the
//! repo's own schemas, plans it against the live cluster and applies it as one change set
//! with the authority of the user who pushed, then reports where it stands on every
//! member. Anything wrong — an invalid commit, a plan that removes members, a stale plan,
//! a refusal — is printed (git shows it as `remote:` lines) and the push is refused (exit
//! 1): the branch does not move and nothing changes.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Args;

use super::agent_args::TargetArgs;
use super::args::Format;
use super::connect::connect;
use super::output::Output;
use super::plan::plan_snapshot;
use super::{CliError, Failure, Outcome};
use crate::plan::render_human;
use crate::protocol::Request;

/// `strata git-hook`.
#[derive(Debug, Args)]
pub struct GitHookArgs {
    /// The hook git runs: `pre-receive`.
    #[arg(value_name = "HOOK")]
    pub hook: String,
}

const ZERO: &str = "0000000000000000000000000000000000000000";

/// Runs the hook.
pub fn run(args: GitHookArgs, out: &Output) -> Result<Outcome, CliError> {
    if args.hook != "pre-receive" {
        return Err(Failure::new(
            format!("`{}` is not a hook Strata runs", args.hook),
            "the agent installs `pre-receive` only",
        ));
    }
    let env = |name: &str| {
        std::env::var(name).map_err(|_| {
            Failure::new(
                format!("{name} is not set: this runs as the config repo's hook"),
                "push to the agent (`git push ssh://USER@HOST:2222/config main`)",
            )
        })
    };
    let state_dir = PathBuf::from(env("STRATA_STATE_DIR")?);
    let user = env("STRATA_PUSH_USER")?;
    let role = env("STRATA_PUSH_ROLE")?;
    let deployed = format!("refs/heads/{}", env("STRATA_DEPLOYED_BRANCH")?);
    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| Failure::new(format!("reading git's input: {e}"), ""))?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [old, new, name] = parts.as_slice() {
            updates.push((old.to_string(), new.to_string(), name.to_string()));
        }
    }
    let human = Output {
        format: Format::Human,
        color: false,
        width: out.width.min(100),
    };
    for (_, new, name) in updates.iter().filter(|(_, _, n)| *n == deployed) {
        if new == ZERO {
            return Err(Failure::refused(
                format!("{name} is the branch the cluster runs: it cannot be deleted"),
                "push another commit instead",
            ));
        }
        deploy(new, &state_dir, &user, &role, &human)?;
    }
    Ok(Outcome::Ok)
}

/// The push's options (`git push -o confirm-within=5m`): the window to apply on trial
/// in, if given. An option Strata does not know refuses the push.
fn push_options() -> Result<Option<std::time::Duration>, CliError> {
    let count: usize = std::env::var("GIT_PUSH_OPTION_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut window = None;
    for i in 0..count {
        let option = std::env::var(format!("GIT_PUSH_OPTION_{i}")).unwrap_or_default();
        match option.split_once('=') {
            Some(("confirm-within", text)) => {
                window = Some(super::propagation::parse_window(text).map_err(|e| {
                    Failure::refused(format!("push refused: {e}"), "nothing changed")
                })?);
            }
            _ => {
                return Err(Failure::refused(
                    format!("push refused: unknown push option `{option}`"),
                    "Strata takes -o confirm-within=DURATION (commit confirmed); nothing changed",
                ));
            }
        }
    }
    Ok(window)
}

/// Validates, plans and applies commit `new`.
fn deploy(
    new: &str,
    state_dir: &std::path::Path,
    user: &str,
    role: &str,
    out: &Output,
) -> Result<(), CliError> {
    // In the hook, git's environment points at the quarantined objects of the push.
    let repo = git2::Repository::open_from_env()
        .map_err(|e| Failure::new(format!("cannot open the pushed repository: {e}"), ""))?;
    let snapshot = crate::source::read_repo_ref(&repo, new).map_err(CliError::invalid)?;
    let short = &new[..new.len().min(10)];
    let target = TargetArgs {
        state_dir: Some(state_dir.to_path_buf()),
        ..TargetArgs::default()
    };
    let mut client = connect(&target)?;
    let (plan, _, _) = plan_snapshot(
        snapshot,
        &format!("commit {short}"),
        false,
        &mut client,
        out,
    )?;
    if plan.is_empty() {
        println!("strata: the cluster already runs what commit {short} says: nothing to apply");
        return Ok(());
    }
    let hazards = plan.hazards(&client.machine);
    if !hazards.is_empty() {
        let lines: Vec<String> = hazards.iter().map(|h| format!("  {h}")).collect();
        return Err(Failure::refused(
            format!(
                "push refused: through {}, commit {short}\n{}",
                client.machine,
                lines.join("\n")
            ),
            "nothing changed; if that is what you mean, apply it by hand: `strata apply --ref COMMIT` with the flag it names",
        ));
    }
    // Secrets masked, as every other output masks them.
    print!("{}", crate::secret::mask::mask_text(&render_human(&plan)));
    let response = client.request(Request::ApplyPush {
        user: user.to_owned(),
        role: role.to_owned(),
        writes: plan.writes(),
        base: plan.base.clone(),
        origin: plan.origin.clone(),
        confirm_within_ms: push_options()?.map(|w| w.as_millis() as u64),
    })?;
    // A refusal (stale, denied) fails the hook, so the push is refused too.
    let wait = super::propagation::BRIEF * 5;
    super::apply::report(response, out, &hazards, Some((&mut client, wait, false)))?;
    let _ = std::io::stdout().flush();
    Ok(())
}
