//! `strata apply`: commit a plan (computed now, or saved by `plan --out`) to an agent as
//! one atomic change set, once it has been shown and the user said yes (or gave --yes).
//! A stale plan is refused with what changed since.

use std::time::Duration;

use super::agent_args::ApplyArgs;
use super::args::Format;
use super::confirm::{Question, confirm};
use super::connect::{Client, connect, unexpected};
use super::json::ApplyJson;
use super::output::Output;
use super::plan::desired_plan;
use super::propagation;
use super::{CliError, Failure, Outcome};
use crate::plan::{Hazard, PLAN_FORMAT, Plan, render_human};
use crate::protocol::{Request, Response, RunReport};
use crate::state::ChangeSetSummary;
use crate::text::count;

/// Runs `strata apply`.
pub fn run(args: ApplyArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    let (plan, catalogue): (Plan, crate::schema::Catalogue) = match &args.plan {
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
            if let Some(key) = plan.duplicate_key() {
                return Err(Failure::new(
                    format!(
                        "{} has two actions for {key}: a saved plan has one per entry",
                        path.display()
                    ),
                    "save the plan again with `strata plan --out FILE`",
                ));
            }
            // A saved plan carries the schemas it changes, not the whole catalogue: the
            // built-in one says which of its fields are secrets.
            (plan, crate::schema::Catalogue::builtin())
        }
        None => {
            let (plan, catalogue, _) = desired_plan(
                &args.repo.repo,
                args.git_ref.as_deref(),
                args.allow_plaintext_secrets,
                &mut client,
                out,
            )?;
            (plan, catalogue)
        }
    };
    if plan.is_empty() {
        match out.format {
            Format::Json => out.json(&ApplyJson::unchanged()),
            _ => out.print("no changes: nothing to apply\n"),
        }
        return Ok(Outcome::Ok);
    }
    if out.format != Format::Json {
        out.print(&render_human(&crate::secret::mask::shown_plan(
            &plan, &catalogue,
        )));
    }
    let hazards = plan.hazards(&client.machine);
    let refused: Vec<&Hazard> = hazards.iter().filter(|h| !consented(h, &args)).collect();
    if !refused.is_empty() {
        let mut flags: Vec<&str> = refused.iter().map(|h| flag_for(h)).collect();
        flags.dedup();
        let lines: Vec<String> = refused.iter().map(|h| format!("  {h}")).collect();
        return Err(Failure::refused(
            format!(
                "not applied: through {}, this plan\n{}",
                client.machine,
                lines.join("\n")
            ),
            format!(
                "nothing was written; if that is what you mean, apply again with {} (--yes alone never does this)",
                flags.join(" ")
            ),
        ));
    }
    if out.format != Format::Json {
        for h in &hazards {
            out.print(&format!("\nallowed by {}: this apply {h}\n", flag_for(h)));
        }
    }
    let question = Question {
        command: "apply",
        done: "applied",
        through: &client.machine,
    };
    confirm(&question, args.yes, out)?;
    let response = client.request(Request::Apply {
        writes: plan.writes(),
        base: plan.base.clone(),
        origin: plan.origin.clone(),
        override_follower: args.override_follower,
        break_glass: args.break_glass.clone(),
        confirm_within_ms: args.confirm_within.map(|w| w.as_millis() as u64),
    })?;
    let wait = args.wait.unwrap_or(super::propagation::BRIEF);
    report(
        response,
        out,
        &hazards,
        Some((&mut client, wait, args.wait.is_some())),
    )
}

/// The flag that allows a hazard.
pub(super) fn flag_for(hazard: &Hazard) -> &'static str {
    match hazard {
        Hazard::RemovesMember { .. } => "--allow-member-removal",
        Hazard::ResetsOwnNetwork { .. } => "--allow-own-interfaces",
        Hazard::RemovesAdminCredential { .. } => "--allow-admin-lockout",
    }
}

fn consented(hazard: &Hazard, args: &ApplyArgs) -> bool {
    match hazard {
        Hazard::RemovesMember { .. } => args.allow_member_removal,
        Hazard::ResetsOwnNetwork { .. } => args.allow_own_interfaces,
        Hazard::RemovesAdminCredential { .. } => args.allow_admin_lockout,
    }
}

/// Where to follow a committed change set: the client, how long to wait for every
/// reachable member, and whether not reaching them all in that time fails (`--wait`).
pub(super) type Follow<'a> = Option<(&'a mut Client, Duration, bool)>;

/// Prints what a commit did, and where it stands on every member when `follow` says so;
/// a failing hook, a refusal, or a `--wait` that timed out makes the command fail.
pub(super) fn report(
    response: Response,
    out: &Output,
    hazards: &[Hazard],
    follow: Follow<'_>,
) -> Result<Outcome, CliError> {
    match response {
        Response::Applied {
            change_set,
            running,
        } => {
            let (propagation, strict) = match follow {
                Some((client, wait, strict)) => {
                    (propagation::ask(client, &change_set.version, wait), strict)
                }
                None => (None, false),
            };
            match out.format {
                Format::Json => out.json(&ApplyJson::Applied {
                    applied: true,
                    change_set: change_set.clone(),
                    running: running.clone(),
                    hazards: hazards.to_vec(),
                    propagation: propagation.clone(),
                }),
                _ => {
                    let mut text = applied_text(&change_set, &running);
                    if let Some(p) = &propagation {
                        text.push_str(&propagation::render(p));
                    }
                    if let Some(crate::model::Confirm::Trial { by_ms }) = &change_set.meta.confirm {
                        text.push_str(&format!(
                            "on trial: every machine reverts it at {} unless `strata confirm` reaches it\n",
                            super::log::utc(*by_ms)
                        ));
                    }
                    if let Some(crate::model::Rollout::Staged { waves, .. }) =
                        &change_set.meta.rollout
                    {
                        let names: Vec<&str> = waves.iter().map(|w| w.name.as_str()).collect();
                        text.push_str(&format!(
                            "staged: it reaches the waves {} one after another (`strata status` shows where it is)\n",
                            names.join(", ")
                        ));
                    }
                    out.print(&text)
                }
            }
            if let Some(e) = hooks_failed(&change_set, &running) {
                return Err(e);
            }
            match propagation {
                Some(p) if strict && !propagation::complete(&p) => Err(Failure::refused(
                    format!(
                        "change set {} is committed, but not every reachable member applied it in time",
                        change_set.id
                    ),
                    "it is durable and keeps spreading; `strata check` shows where it is missing",
                )),
                _ => Ok(Outcome::Ok),
            }
        }
        Response::Unchanged => {
            match out.format {
                Format::Json => out.json(&ApplyJson::unchanged()),
                _ => out.print("no changes: nothing to apply\n"),
            }
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
