//! `strata plan`: desired state (the working tree or a git ref) versus an agent's live
//! state. Exit 0 when nothing would change, 2 when something would, 1 on error.

use std::path::Path;

use super::agent_args::PlanArgs;
use super::args::Format;
use super::connect::{Client, connect};
use super::json::PlanJson;
use super::output::Output;
use super::{CliError, Failure, Outcome};
use crate::atomic_file::{self, FileMode};
use crate::plan::{
    Entries, Origin, Plan, changed_since, compare, desired, diff, diff_fetched, render_human,
};
use crate::schema::Catalogue;
use crate::source::{check, read_ref, read_worktree};
use crate::state::Live;

/// Reads and validates the desired state; prints warnings, and on errors prints every
/// diagnostic and refuses.
pub(super) fn desired_plan(
    repo: &Path,
    git_ref: Option<&str>,
    allow_plaintext: bool,
    client: &mut Client,
    out: &Output,
) -> Result<(Plan, Catalogue, Entries), CliError> {
    let snapshot = match git_ref {
        Some(r) => read_ref(repo, r),
        None => read_worktree(repo, &client.user),
    }
    .map_err(CliError::invalid)?;
    let at = git_ref.map_or(String::new(), |r| format!(" at {r}"));
    plan_snapshot(
        snapshot,
        &format!("{}{at}", repo.display()),
        allow_plaintext,
        client,
        out,
    )
}

/// Validates `snapshot` (named `what` in errors), printing its diagnostics, and plans it
/// against the live state `client` reaches; with the catalogue it was checked with (to
/// show it: [`crate::secret::mask::shown_plan`]). Secrets in clear text are errors unless
/// `allow_plaintext` (`--allow-plaintext-secrets`) makes them warnings.
pub(super) fn plan_snapshot(
    snapshot: crate::source::Snapshot,
    what: &str,
    allow_plaintext: bool,
    client: &mut Client,
    out: &Output,
) -> Result<(Plan, Catalogue, Entries), CliError> {
    let mut checked = check(&snapshot);
    if allow_plaintext {
        crate::secret::allow_plaintext(&mut checked.diags);
    }
    // A drift-ignore rule past its date, by this machine's clock.
    crate::validate::expired_drift_ignore(
        &checked.repo,
        crate::state::wall_ms(),
        &mut checked.diags,
    );
    let human = Output {
        format: Format::Human,
        color: out.color,
        width: out.width,
    };
    human.diagnostics(&checked.diags);
    if checked.diags.has_errors() {
        return Err(Failure::new(
            format!(
                "{what} is not a valid config repo ({}); nothing was planned",
                crate::text::count(checked.diags.error_count(), "error")
            ),
            "fix the problems above; `strata validate` reports them all",
        ));
    }
    // A secret no identity of the cluster decrypts would reach no running config.
    let sites = crate::secret::sites::find(&checked.repo, &checked.catalogue);
    let stuck = super::secret::undecryptable(client, &sites, false)?;
    if !stuck.is_empty() {
        return Err(super::secret::stuck_failure(
            &stuck,
            &format!("nothing was planned: no identity of the cluster decrypts {{n}} of {what}"),
        ));
    }
    let desired = desired(&checked.repo, &checked.catalogue);
    let plan = plan_by_digest(&desired, &checked.catalogue, client, snapshot.origin)?;
    Ok((plan, checked.catalogue, desired))
}

/// How many times a plan asks for digests and entries again when a commit lands between
/// the two answers, before it fetches every live entry in one answer instead.
const DIGEST_TRIES: usize = 3;

/// Plans `desired` against the agent `client` reaches, fetching only the live entries
/// whose digests differ from the desired ones ([`crate::plan::digests_of`]): the plan
/// [`diff`] makes against every live entry. When an entry it fetched changed since the
/// digests were taken (a commit landed between the two answers), it asks again.
fn plan_by_digest(
    desired: &Entries,
    catalogue: &Catalogue,
    client: &mut Client,
    origin: Origin,
) -> Result<Plan, CliError> {
    for _ in 0..DIGEST_TRIES {
        let digests = client.digests()?;
        let found = compare(desired, &digests);
        let fetched = if found.fetch.is_empty() {
            Live::new()
        } else {
            client.entries(found.fetch.clone())?
        };
        if changed_since(&digests, &found.fetch, &fetched).is_empty() {
            return Ok(diff_fetched(desired, catalogue, &found, &fetched, origin));
        }
    }
    // Commits keep landing between the two answers: one answer holds every entry.
    let live = client.live()?;
    Ok(diff(desired, catalogue, &live, origin))
}

/// Runs `strata plan`.
pub fn run(args: PlanArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    let (plan, catalogue, _) = desired_plan(
        &args.repo.repo,
        args.git_ref.as_deref(),
        args.allow_plaintext_secrets,
        &mut client,
        out,
    )?;
    if let Some(path) = &args.out {
        let text = serde_json::to_string_pretty(&plan).unwrap_or_default();
        // Atomic, so an interrupted write never leaves a truncated plan to apply later.
        atomic_file::write(path, (text + "\n").as_bytes(), FileMode::Private).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {}", path.display(), e.source),
                "check the path",
            )
        })?;
    }
    // What `apply` would refuse without an explicit flag, said now, where it is reviewed.
    let hazards = plan.hazards(&client.machine);
    let plan = crate::secret::mask::shown_plan(&plan, &catalogue);
    let changes = !plan.is_empty();
    match out.format {
        Format::Json => out.json(&PlanJson {
            plan,
            changes,
            agent: client.machine.clone(),
            hazards,
        }),
        _ => {
            let mut text = format!("agent: {}\n{}", client.machine, render_human(&plan));
            for h in &hazards {
                text.push_str(&format!(
                    "\nwarning: this plan {h}; `strata apply` does that only with {}\n",
                    super::apply::flag_for(h)
                ));
            }
            out.print(&text)
        }
    }
    Ok(if changes {
        Outcome::Changes
    } else {
        Outcome::Ok
    })
}
