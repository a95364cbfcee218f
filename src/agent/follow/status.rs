//! What `strata status` shows on a machine: for a follower, the live state against the
//! head of its branch; for any other member, against what the last applied commit left
//! (the state as of its change set). Each difference names the change set that wrote the
//! live value, so an operator sees who moved the cluster off the branch.

use std::collections::BTreeSet;

use super::Follower;
use crate::cluster::applier::Applier;
use crate::cluster::node::Node;
use crate::drift_ignore::{self, Ignoring};
use crate::model::OriginKind;
use crate::plan::{Action, Change, Origin, Plan};
use crate::protocol::sync_status::{
    AppliedCommit, CommitInfo, Followed, Health, LastRun, Sync, SyncStatus,
};
use crate::state::{ChangeSet, Key, Live, Source, Store, state_as_of};

impl Follower {
    /// What `status` shows of the follower: head, sync, reasons, when self-heal is due,
    /// last error. Reads the head again (a remote as last fetched).
    fn status_of<S: Store, A: Applier>(
        &self,
        node: &Node<S, A>,
        now_ms: u64,
        out: &mut SyncStatus,
    ) {
        let f = &self.settings;
        out.source = Some(Followed {
            url: f.url.clone(),
            branch: f.branch.clone(),
            mode: f.mode.as_str().into(),
            self_heal: f.self_heal,
            grace_ms: f.grace_ms,
        });
        out.compared_with = "head".into();
        let mut inner = self.lock();
        match self.assess(&mut inner, node) {
            Err(e) => {
                out.sync = Sync::Unknown;
                inner.last_error.get_or_insert(e);
            }
            Ok(a) => {
                out.head = Some(commit_info(&a.plan.origin));
                let mut ignoring = head_rules(inner.desired.as_ref(), now_ms);
                let differing = not_ignored(&a.plan, &mut ignoring);
                out.drift_ignore = ignoring.in_force();
                out.ignored = ignoring.ignored();
                if differing.is_empty() {
                    out.sync = Sync::Synced;
                } else {
                    out.sync = Sync::OutOfSync;
                    let sets = node.change_sets().unwrap_or_default();
                    let known = inner.knows(&commit_of(&a.plan.origin), &sets);
                    if !known {
                        out.reasons.push(format!(
                            "commit {} (the head of {}) is not applied yet",
                            short(&commit_of(&a.plan.origin)),
                            f.branch
                        ));
                    }
                    out.reasons.extend(reasons(differing, &a.live, &sets));
                    if known && f.self_heal {
                        out.heal_at_ms = inner.drift.as_ref().map(|d| d.since_ms + f.grace_ms);
                    }
                }
            }
        }
        out.last_error = inner.last_error.clone();
    }
}

/// The commit `origin` names (empty for a CLI apply).
pub(super) fn commit_of(origin: &Origin) -> String {
    commit_in(&origin.source)
}

fn commit_in(source: &Source) -> String {
    match source {
        Source::Git { commit } => commit.clone(),
        Source::Cli => String::new(),
    }
}

/// A commit id as `status` and the log lines print it.
pub(super) fn short(commit: &str) -> String {
    commit.chars().take(10).collect()
}

fn commit_info(origin: &Origin) -> CommitInfo {
    info(&origin.source, &origin.author, &origin.message)
}

/// The commit, author and first line of the message, as `status` shows them.
fn info(source: &Source, author: &str, message: &str) -> CommitInfo {
    CommitInfo {
        commit: commit_in(source),
        author: author.to_owned(),
        message: first_line(message),
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

/// The actions of `plan` that no drift-ignore rule of `ignoring` covers.
fn not_ignored<'a>(plan: &'a Plan, ignoring: &mut Ignoring) -> Vec<&'a Action> {
    plan.actions
        .iter()
        .filter(|a| !ignores(ignoring, a))
        .collect()
}

/// Whether a drift-ignore rule in force covers what `action` would change.
pub(super) fn ignores(ignoring: &mut Ignoring, action: &Action) -> bool {
    let (repo, live) = match &action.change {
        Change::Create { new } => (Some(new), None),
        Change::Change { old, new } => (Some(new), Some(old)),
        Change::Remove { old } => (None, Some(old)),
    };
    ignoring.ignores(&action.key, repo, live)
}

/// The head's drift-ignore rules in force at `now_ms`.
pub(super) fn head_rules(desired: Option<&super::Desired>, now_ms: u64) -> Ignoring {
    let rules = desired.and_then(|d| drift_ignore::section_of(d.entries.get(&drift_ignore::key())));
    Ignoring::new(rules, now_ms)
}

/// Each entry of `actions` changes, with what differs and which change set wrote the
/// live value.
pub(super) fn reasons<'a>(
    actions: impl IntoIterator<Item = &'a Action>,
    live: &Live,
    sets: &[ChangeSet],
) -> Vec<String> {
    actions
        .into_iter()
        .map(|a| {
            let what = match a.change {
                Change::Create { .. } => "is missing",
                Change::Change { .. } => "differs",
                Change::Remove { .. } => "is not in the commit",
            };
            format!("{} {what}{}", a.key, written_by(live, sets, &a.key))
        })
        .collect()
}

/// `: written by USER on HOST (SOURCE, change set ID: "MESSAGE")` for the live entry.
fn written_by(live: &Live, sets: &[ChangeSet], key: &Key) -> String {
    let Some(entry) = live.get(key) else {
        return String::new();
    };
    let m = &entry.stamp.meta;
    let message = sets
        .iter()
        .find(|cs| cs.version == entry.stamp.version)
        .map(|cs| first_line(&cs.meta.message))
        .unwrap_or_default();
    format!(
        ": written by {} on {} ({}, change set {}: \"{message}\")",
        m.user,
        m.host,
        m.source_shown(),
        entry.stamp.change_set()
    )
}

/// The newest change set stamped with a commit.
pub fn last_applied(sets: &[ChangeSet]) -> Option<&ChangeSet> {
    sets.iter()
        .filter(|cs| matches!(cs.meta.source, Source::Git { .. }))
        .max_by(|a, b| a.version.cmp(&b.version))
}

/// Whether `sets` say a follower in mode apply keeps the cluster at a branch: the newest
/// change set stamped with a commit was made by one (known by how it came, not by the
/// user name, which a user could share).
pub fn followed_by_log(sets: &[ChangeSet]) -> Option<&ChangeSet> {
    last_applied(sets).filter(|cs| cs.meta.origin_kind == OriginKind::Follower)
}

/// For a member that follows nothing: the entries whose live value differs from what the
/// last applied commit left (the state as of its change set), with who changed them,
/// less what that commit's drift-ignore rules in force cover (`ignoring`).
fn drift_from_log(
    last: &ChangeSet,
    sets: &[ChangeSet],
    live: &Live,
    now_ms: u64,
    out: &mut SyncStatus,
) {
    let then = state_as_of(sets, &last.version);
    let rules = then
        .get(&drift_ignore::key())
        .and_then(|v| drift_ignore::section_of(v.as_ref()));
    let mut ignoring = Ignoring::new(rules, now_ms);
    let keys: BTreeSet<&Key> = then.keys().chain(live.keys()).collect();
    for key in keys.into_iter().filter(|k| k.is_declared_by_repos()) {
        let want = then.get(key).cloned().flatten();
        let have = live.get(key).and_then(|e| e.value.clone());
        // What the cluster owns (a machine's host key and peer address, passphrase
        // hashes set with `cluster passwd`) is no repo's: not drift.
        let want = want.map(|w| crate::plan::ownership::over_live(key, &w, have.as_ref()));
        if want != have && !ignoring.ignores(key, want.as_ref(), have.as_ref()) {
            let what = match (&want, &have) {
                (Some(_), None) => "is missing",
                (None, _) => "is not in the commit",
                _ => "differs",
            };
            out.reasons
                .push(format!("{key} {what}{}", written_by(live, sets, key)));
        }
    }
    out.drift_ignore = ignoring.in_force();
    out.ignored = ignoring.ignored();
}

/// The health of the node's last run, Degraded too while its store cannot be written.
fn last_run<S: Store, A: Applier>(node: &Node<S, A>) -> LastRun {
    let mut run = run_health(node);
    if node.store_failure().is_some() {
        run.health = Health::Degraded;
    }
    run
}

/// The health of the node's last run, from its hooks.
fn run_health<S: Store, A: Applier>(node: &Node<S, A>) -> LastRun {
    match node.last_run() {
        None => LastRun {
            health: Health::Unknown,
            at_ms: None,
            sections: 0,
            failed: Vec::new(),
        },
        Some((at, report)) => {
            let failed: Vec<_> = report.hooks.iter().filter(|h| !h.ok).cloned().collect();
            LastRun {
                health: if failed.is_empty() {
                    Health::Healthy
                } else {
                    Health::Degraded
                },
                at_ms: Some(at),
                sections: report.written.len() + report.removed.len(),
                failed,
            }
        }
    }
}

/// What `strata status` shows on this machine: a follower compares the live state with
/// its head; any other member with what the last applied commit left.
pub fn status<S: Store, A: Applier>(
    node: &Node<S, A>,
    follower: Option<&Follower>,
) -> Result<SyncStatus, String> {
    let sets = node.change_sets().map_err(|e| e.to_string())?;
    let last = last_applied(&sets);
    // Drift-ignore rules expire by this machine's clock.
    let now_ms = crate::state::wall_ms();
    let mut out = SyncStatus {
        machine: node.machine().to_string(),
        source: None,
        head: None,
        last_applied: last.map(|cs| AppliedCommit {
            commit: info(&cs.meta.source, &cs.meta.author, &cs.meta.message),
            change_set: cs.id(),
            wall_ms: cs.wall_ms,
            user: cs.meta.user.clone(),
            host: cs.meta.host.clone(),
            origin_kind: cs.meta.origin_kind,
        }),
        sync: Sync::Unknown,
        compared_with: "last-applied".into(),
        reasons: Vec::new(),
        drift_ignore: Vec::new(),
        ignored: Vec::new(),
        heal_at_ms: None,
        last_error: None,
        last_run: last_run(node),
        served: None,
        store_failure: node.store_failure(),
        trials: node
            .pending_trials()
            .into_iter()
            .map(|(v, by)| crate::protocol::sync_status::Trial {
                change_set: crate::model::ChangeSetId::of(&v),
                reverts_at_ms: by,
            })
            .collect(),
        rollouts: {
            // Those still moving, and the newest if it halted (why it halted stays in
            // view until the next rollout).
            let all = node.rollouts();
            let newest = all.iter().map(|p| p.version.clone()).max();
            all.into_iter()
                .filter(|p| {
                    p.moving() || (p.halted.is_some() && Some(&p.version) == newest.as_ref())
                })
                .collect::<Vec<_>>()
        }
        .into_iter()
        .map(|p| {
            format!(
                "change set {}: {}",
                crate::model::ChangeSetId::of(&p.version),
                p.describe()
            )
        })
        .collect(),
    };
    match (follower, last) {
        (Some(f), _) => f.status_of(node, now_ms, &mut out),
        (None, None) => out.reasons.push(
            "no commit has been applied to this cluster yet, and this machine follows no repo"
                .into(),
        ),
        (None, Some(last)) => {
            let live = node.live().map_err(|e| e.to_string())?;
            drift_from_log(last, &sets, &live, now_ms, &mut out);
            out.sync = if out.reasons.is_empty() {
                Sync::Synced
            } else {
                Sync::OutOfSync
            };
        }
    }
    Ok(out)
}
