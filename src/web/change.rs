//! What the console reads and writes of the agent's config repo (`config.git`, the one
//! `git push` reaches): the desired state at the deployed branch, and an edit made into
//! a commit on top of it (author: the logged-in user), planned against the live cluster
//! and applied as one change set stamped with that commit — the way a push goes. The
//! branch moves only once the change set is committed, so a refused apply leaves the
//! repo where it was; other members fetch the commit from this one, as after a push.

use std::path::Path;

use git2::{Oid, Repository, Signature};

use crate::agent::{Agent, git_serve};
use crate::cluster::Authed;
use crate::edit::FileChange;
use crate::plan::{Plan, desired, diff};
use crate::protocol::{Request, Response};
use crate::source::{Snapshot, check, read_repo_ref};
use crate::validate::Checked;

/// The desired state the deployed branch holds.
pub struct Desired {
    /// The branch's commit.
    pub commit: Oid,
    /// Parsed and validated.
    pub checked: Checked,
}

/// Why there is nothing to show or edit.
pub const NO_COMMIT_HELP: &str =
    "push a config repo to this agent first: git push ssh://USER@HOST:2222/config main";

fn deployed_ref() -> String {
    format!("refs/heads/{}", git_serve::DEPLOYED_BRANCH)
}

/// Reads the deployed branch of the agent's config repo.
pub fn read(agent: &Agent) -> Result<Desired, String> {
    let dir = git_serve::path(agent);
    if !dir.join("HEAD").exists() {
        return Err(format!(
            "this agent's config repo has no commit yet; {NO_COMMIT_HELP}"
        ));
    }
    let repo = Repository::open_bare(&dir).map_err(|e| e.to_string())?;
    let commit = repo
        .refname_to_id(&deployed_ref())
        .map_err(|_| format!("this agent's config repo has no commit yet; {NO_COMMIT_HELP}"))?;
    let snapshot = read_repo_ref(&repo, &commit.to_string()).map_err(|e| e.to_string())?;
    let checked = check(&snapshot);
    Ok(Desired { commit, checked })
}

/// Writes `changes` as a commit whose parent is `parent` (the branch is not moved).
pub fn commit(
    agent: &Agent,
    parent: Oid,
    changes: &[FileChange],
    user: &str,
    message: &str,
) -> Result<Oid, String> {
    let repo = Repository::open_bare(git_serve::path(agent)).map_err(|e| e.to_string())?;
    let parent = repo.find_commit(parent).map_err(|e| e.to_string())?;
    let base = parent.tree().map_err(|e| e.to_string())?;
    let mut update = git2::build::TreeUpdateBuilder::new();
    for change in changes {
        let blob = repo
            .blob(change.after.as_bytes())
            .map_err(|e| e.to_string())?;
        update.upsert(Path::new(&change.name), blob, git2::FileMode::Blob);
    }
    let tree = update
        .create_updated(&repo, &base)
        .map_err(|e| e.to_string())?;
    let tree = repo.find_tree(tree).map_err(|e| e.to_string())?;
    let machine = &agent.state.settings.machine;
    let author = Signature::now(user, &format!("{user}@{machine}")).map_err(|e| e.to_string())?;
    let committer = Signature::now(
        &format!("Strata web console on {machine}"),
        &format!("strata@{machine}"),
    )
    .map_err(|e| e.to_string())?;
    repo.commit(None, &author, &committer, message, &tree, &[&parent])
        .map_err(|e| e.to_string())
}

/// Reads commit `commit` of the agent's config repo.
pub fn read_commit(agent: &Agent, commit: Oid) -> Result<(Snapshot, Checked), String> {
    let repo = Repository::open_bare(git_serve::path(agent)).map_err(|e| e.to_string())?;
    let snapshot = read_repo_ref(&repo, &commit.to_string()).map_err(|e| e.to_string())?;
    let checked = check(&snapshot);
    Ok((snapshot, checked))
}

/// Plans a checked snapshot against this agent's live entries.
pub fn plan(
    agent: &Agent,
    who: &Authed,
    snapshot: &Snapshot,
    checked: &Checked,
) -> Result<Plan, String> {
    let live = match agent.handle(who, Request::Live) {
        Response::Live { entries, .. } => entries,
        other => return Err(answer_text(&other)),
    };
    let desired = desired(&checked.repo, &checked.catalogue);
    Ok(diff(
        &desired,
        &checked.catalogue,
        &live,
        snapshot.origin.clone(),
    ))
}

/// Applies `plan` with `who`'s authority; on success moves the deployed branch to
/// `commit` and returns the change set's id.
pub fn apply(agent: &Agent, who: &Authed, plan: &Plan, commit: Oid) -> Result<String, String> {
    let answer = agent.handle(
        who,
        Request::Apply {
            writes: plan.writes(),
            base: plan.base.clone(),
            origin: plan.origin.clone(),
            override_follower: false,
            break_glass: None,
            confirm_within_ms: None,
        },
    );
    let id = match answer {
        Response::Applied { change_set, .. } => change_set.id.to_string(),
        other => return Err(answer_text(&other)),
    };
    // The change set is committed: from here on it is applied whatever git says. The
    // mesh's git sync moves every member's branch to the commit the cluster runs, this
    // one's too, and may hold the branch's lock right now: try again a few times, and
    // leave it to that sync if the lock stays taken.
    let repo = Repository::open_bare(git_serve::path(agent)).map_err(|e| e.to_string())?;
    for attempt in 1..=5 {
        match crate::source::pack::advance(&repo, git_serve::DEPLOYED_BRANCH, commit) {
            Ok(_) => break,
            Err(e) if attempt == 5 => {
                tracing::warn!(%commit, change_set = id, "the branch did not move yet (the mesh's git sync moves it): {e}");
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20 * attempt)),
        }
    }
    Ok(id)
}

/// An answer that is not the one asked for, as a sentence.
pub fn answer_text(answer: &Response) -> String {
    match answer {
        Response::Error { message, help } => match help {
            Some(h) => format!("{message} ({h})"),
            None => message.clone(),
        },
        Response::Denied { message } => format!("refused: {message}"),
        Response::Stale { conflicts } => format!(
            "the cluster changed since this was planned ({}): review it again",
            crate::text::count(conflicts.len(), "conflicting change")
        ),
        _ => "the agent answered something unexpected".into(),
    }
}
