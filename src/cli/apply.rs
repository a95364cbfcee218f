//! `strata apply`: commit a plan (computed now, or saved by `plan --out`) to an agent as
//! one atomic change set. A stale plan is refused with what changed since.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::json;

use super::agent_args::ApplyArgs;
use super::args::Format;
use super::connect::{connect, unexpected};
use super::output::Output;
use super::plan::desired_plan;
use super::{CliError, Failure, Outcome};
use crate::mesh::{Request, Response, RunReport};
use crate::plan::{PLAN_FORMAT, Plan, render_human};
use crate::state::ChangeSetSummary;
use crate::text::count;

/// Runs `strata apply`.
pub fn run(args: ApplyArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    let plan: Plan = match &args.plan {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::new(
                    format!("cannot read {}: {e}", path.display()),
                    "check the path",
                )
            })?;
            let plan: Plan = serde_json::from_str(&text).map_err(|e| {
                Failure::new(
                    format!("{} is not a saved plan: {e}", path.display()),
                    "save one with `strata plan --out FILE`",
                )
            })?;
            if plan.format != PLAN_FORMAT {
                return Err(Failure::new(
                    format!(
                        "{} has plan format {}, this Strata reads {PLAN_FORMAT}",
                        path.display(),
                        plan.format
                    ),
                    "plan again with this version",
                ));
            }
            plan
        }
        None => desired_plan(&args.repo.repo, args.git_ref.as_deref(), &mut client, out)?,
    };
    if plan.is_empty() {
        match out.format {
            Format::Json => out.json(&json!({ "applied": false, "changes": false })),
            _ => out.print("no changes: nothing to apply\n"),
        }
        return Ok(Outcome::Ok);
    }
    if out.format != Format::Json {
        out.print(&render_human(&plan));
    }
    let removals = plan.actions.iter().filter(|a| a.is_destructive()).count();
    if removals > 0 && !args.yes && std::io::stdin().is_terminal() && !confirm(removals) {
        return Err(Failure::refused("not applied", "nothing was written"));
    }
    let response = client.request(Request::Apply {
        writes: plan.writes(),
        base: plan.base.clone(),
        origin: plan.origin.clone(),
    })?;
    report(response, out)
}

fn confirm(removals: usize) -> bool {
    eprint!("this removes {}; apply? [y/N] ", count(removals, "entry"));
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "yes")
}

/// Prints what a commit did; a failing hook or a refusal makes the command fail.
pub(super) fn report(response: Response, out: &Output) -> Result<Outcome, CliError> {
    match response {
        Response::Applied {
            change_set,
            running,
        } => {
            match out.format {
                Format::Json => out.json(&json!({
                    "applied": true,
                    "change_set": change_set,
                    "running": running,
                })),
                _ => out.print(&applied_text(&change_set, &running)),
            }
            hooks_failed(&change_set, &running).map_or(Ok(Outcome::Ok), Err)
        }
        Response::Unchanged => {
            out.print("no changes: nothing to apply\n");
            Ok(Outcome::Ok)
        }
        Response::Stale { conflicts } => {
            let lines: Vec<String> = conflicts.iter().map(|c| format!("  {c}")).collect();
            Err(Failure::refused(
                format!(
                    "the plan is stale: the agent changed since it was computed; nothing was applied\n{}",
                    lines.join("\n")
                ),
                "run `strata plan` again, review, then apply",
            ))
        }
        other => Err(unexpected(other)),
    }
}

/// The error for a committed change set whose hooks failed, if any did.
pub(super) fn hooks_failed(change_set: &ChangeSetSummary, running: &RunReport) -> Option<CliError> {
    let failed: Vec<String> = running
        .hooks
        .iter()
        .filter(|h| !h.ok)
        .map(|h| format!("`{}` ({}): {}", h.command, h.status, h.output))
        .collect();
    (!failed.is_empty()).then(|| {
        Failure::refused(
            format!(
                "change set {} was committed, but hooks failed on {}: {}",
                change_set.id,
                running.machine,
                failed.join("; ")
            ),
            "the running config files are written; fix the hook and re-run it",
        )
    })
}

fn applied_text(cs: &ChangeSetSummary, running: &RunReport) -> String {
    let mut text = format!(
        "\napplied change set {} ({}) on {}\n",
        cs.id,
        count(cs.keys.len(), "entry"),
        running.machine
    );
    if !running.written.is_empty() {
        text.push_str(&format!(
            "  running config written: {}\n",
            running.written.join(", ")
        ));
    }
    if !running.removed.is_empty() {
        text.push_str(&format!(
            "  running config removed: {}\n",
            running.removed.join(", ")
        ));
    }
    for h in &running.hooks {
        text.push_str(&format!(
            "  hook `{}`: {}\n",
            h.command,
            if h.ok {
                "ok".to_owned()
            } else {
                format!("FAILED ({})", h.status)
            }
        ));
    }
    text
}
