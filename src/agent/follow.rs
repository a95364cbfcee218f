//! Following a config repo (`source` in `agent.kdl`): the agent reads the head of a
//! branch — a local repository it watches (notify, on its git directory: git replaces
//! ref files rather than writing them) and re-reads on the interval, or a remote it
//! fetches on the interval ([`crate::source::fetch`]) — validates it, plans it against
//! the live state and, in mode `apply`, applies it through the one core as an operator's
//! apply would be (`Request::Apply`, one change set stamped with the commit, author and
//! message), so it replicates. In mode `report` it only says the cluster is out of sync.
//!
//! A head that is already in the change log (applied by this follower, another one, a
//! push or an `apply --ref`), or that this follower saw synced, is *known*: a difference
//! from it is a change that did not come from the branch (an apply of another ref, a
//! rollback, a local change synced back). That is logged and shown by `status` and, with
//! `self-heal`, reverted to the head after the grace period as a new change set; without,
//! only reported. Several followers of one branch converge: a follower whose live state
//! already equals the commit writes nothing, and two that apply the same commit write
//! equal values, which are no conflict.
//!
//! The status `strata status` shows is assembled here too ([`status`]): for a follower
//! from its head, for any other member from the change log.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::applier::Applier;
use super::auth::Authed;
use super::node::Node;
use super::settings::{Follow, FollowMode};
use super::users::Role;
use crate::mesh::sync_status::{
    AppliedCommit, CommitInfo, Followed, Health, LastRun, Sync, SyncStatus,
};
use crate::mesh::{Request, Response};
use crate::model::EntryValue;
use crate::plan::{Change, Entries, Origin, Plan, desired, diff};
use crate::schema::Catalogue;
use crate::state::{ChangeSet, Key, Live, Source, Store, state_as_of};

/// The user a follower's change sets are made by, in `strata log`.
pub const FOLLOW_USER: &str = "follow";

/// The head's desired state, read and validated once per commit.
struct Desired {
    commit: String,
    entries: Entries,
    catalogue: Catalogue,
    origin: Origin,
}

/// A difference from a known head, first seen at `since_ms`.
struct Drift {
    since_ms: u64,
}

#[derive(Default)]
struct Inner {
    desired: Option<Desired>,
    last_error: Option<String>,
    drift: Option<Drift>,
    /// Heads seen synced without a change set of theirs (the cluster already ran them).
    seen_synced: BTreeSet<String>,
    /// What was last logged, so a state is logged once, not on every poll.
    logged: String,
}

/// One agent's follower of one branch.
pub struct Follower {
    /// The `source` setting.
    pub settings: Follow,
    /// Where a remote is fetched to (a bare repository in the state dir).
    mirror: PathBuf,
    inner: Mutex<Inner>,
}

/// What one look at the head found.
struct Assessment {
    plan: Plan,
    /// The head is in the change log or was seen synced: a difference is drift.
    known: bool,
}

impl Follower {
    /// A follower of `settings`, fetching remotes into `mirror`.
    pub fn new(settings: Follow, mirror: PathBuf) -> Follower {
        Follower {
            settings,
            mirror,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the head (from the mirror for a remote) and, when it moved, its tree.
    fn load<'i>(&self, inner: &'i mut Inner) -> Result<&'i Desired, String> {
        let f = &self.settings;
        let head = if f.is_remote() {
            let repo = git2::Repository::open_bare(&self.mirror)
                .map_err(|_| format!("{} has not been fetched yet", f.url))?;
            crate::source::repo_head_of(&repo, &format!("refs/heads/{}", f.branch))
        } else {
            crate::source::head_of(std::path::Path::new(&f.url), &f.branch)
        }
        .map_err(|e| format!("{e}"))?;
        if inner.desired.as_ref().is_none_or(|d| d.commit != head) {
            inner.desired = None;
            let snapshot = if f.is_remote() {
                git2::Repository::open_bare(&self.mirror)
                    .map_err(|e| crate::source::SourceError::Git {
                        message: e.message().to_owned(),
                        help: String::new(),
                    })
                    .and_then(|r| crate::source::read_repo_ref(&r, &head))
            } else {
                crate::source::read_ref(std::path::Path::new(&f.url), &head)
            }
            .map_err(|e| format!("{e}"))?;
            let checked = crate::source::check(&snapshot);
            if checked.diags.has_errors() {
                let first: Vec<String> = checked
                    .diags
                    .problems
                    .iter()
                    .filter(|p| p.is_error())
                    .take(3)
                    .map(|p| match (&p.at, p.line_col()) {
                        (Some(at), Some((line, col))) => {
                            format!("{}:{line}:{col}: {}", at.file.name, p.message)
                        }
                        _ => p.message.clone(),
                    })
                    .collect();
                return Err(format!(
                    "commit {} of {} is not a valid config repo ({}): {}; it is not applied",
                    short(&head),
                    f.branch,
                    crate::text::count(checked.diags.error_count(), "error"),
                    first.join("; ")
                ));
            }
            inner.desired = Some(Desired {
                commit: head,
                entries: desired(&checked.repo, &checked.catalogue),
                catalogue: checked.catalogue,
                origin: snapshot.origin,
            });
        }
        inner
            .desired
            .as_ref()
            .ok_or_else(|| "the head could not be read".to_owned())
    }

    /// Plans the head against the live state.
    fn assess<S: Store, A: Applier>(
        &self,
        inner: &mut Inner,
        node: &Node<S, A>,
    ) -> Result<Assessment, String> {
        let live = node.live().map_err(|e| e.to_string())?;
        let sets = node.change_sets().map_err(|e| e.to_string())?;
        let seen = inner.seen_synced.clone();
        let d = self.load(inner)?;
        let plan = diff(&d.entries, &d.catalogue, &live, d.origin.clone());
        let stamped = Source::Git {
            commit: d.commit.clone(),
        };
        let known = seen.contains(&d.commit) || sets.iter().any(|cs| cs.meta.source == stamped);
        Ok(Assessment { plan, known })
    }

    /// One round: fetch (a remote, when `fetch`), read the head, plan it, and apply it or
    /// report. Returns when to look again for self-heal (wall ms), if a revert is due.
    pub fn reconcile<S: Store, A: Applier>(
        &self,
        node: &Node<S, A>,
        fetch: bool,
        now_ms: u64,
    ) -> Option<u64> {
        let f = &self.settings;
        let mut inner = self.lock();
        if fetch
            && f.is_remote()
            && let Err(e) = crate::source::fetch(&self.mirror, &f.url, &f.branch)
        {
            self.fail(&mut inner, e.to_string());
            return None;
        }
        // A stale apply (the live state moved while planning) is planned again.
        for _ in 0..3 {
            let a = match self.assess(&mut inner, node) {
                Ok(a) => a,
                Err(e) => {
                    self.fail(&mut inner, e);
                    return None;
                }
            };
            let commit = short(&commit_of(&a.plan.origin));
            if a.plan.is_empty() {
                inner.seen_synced.insert(commit_of(&a.plan.origin));
                inner.drift = None;
                inner.last_error = None;
                self.note(&mut inner, format!("synced with commit {commit}"), false);
                return None;
            }
            let live = node.live().unwrap_or_default();
            let sets = node.change_sets().unwrap_or_default();
            let reasons = reasons(&a.plan, &live, &sets);
            let mut origin = a.plan.origin.clone();
            if !a.known {
                inner.drift = None;
                if f.mode == FollowMode::Report {
                    self.note(
                        &mut inner,
                        format!(
                            "out of sync: commit {commit} of {} is not applied (mode report): {}",
                            f.branch,
                            reasons.join("; ")
                        ),
                        true,
                    );
                    return None;
                }
            } else {
                let since = inner.drift.as_ref().map_or(now_ms, |d| d.since_ms);
                inner.drift = Some(Drift { since_ms: since });
                let healing = f.self_heal && f.mode == FollowMode::Apply;
                let due = since + f.grace_ms;
                self.note(
                    &mut inner,
                    format!(
                        "out of sync with commit {commit} of {} by a change that did not come from it: {}{}",
                        f.branch,
                        reasons.join("; "),
                        if healing {
                            format!(" (self-heal reverts it after {} ms)", f.grace_ms)
                        } else {
                            " (self-heal is off: only reported)".into()
                        }
                    ),
                    true,
                );
                if !healing {
                    return None;
                }
                if now_ms < due {
                    return Some(due);
                }
                origin.message =
                    format!("self-heal: back to commit {commit}\n\n{}", origin.message);
            }
            match self.apply(node, &a.plan, origin) {
                Ok(true) => {
                    inner.drift = None;
                    inner.last_error = None;
                    return None;
                }
                Ok(false) => continue,
                Err(e) => {
                    self.fail(&mut inner, e);
                    return None;
                }
            }
        }
        None
    }

    /// Applies `plan` as the follower; `Ok(false)`: it went stale, plan again.
    fn apply<S: Store, A: Applier>(
        &self,
        node: &Node<S, A>,
        plan: &Plan,
        origin: Origin,
    ) -> Result<bool, String> {
        let commit = short(&commit_of(&origin));
        let hazards = plan.hazards(node.machine().as_str());
        if !hazards.is_empty() {
            let what: Vec<String> = hazards.iter().map(ToString::to_string).collect();
            return Err(format!(
                "commit {commit} is not applied: it {}; a follower does not do that — apply it by hand (`strata apply --ref {commit}` with the flag it names)",
                what.join(", and ")
            ));
        }
        let who = Authed::user(FOLLOW_USER, Role::Administrator);
        let response = node.handle(
            &who,
            Request::Apply {
                writes: plan.writes(),
                base: plan.base.clone(),
                origin,
            },
        );
        match response {
            Response::Applied {
                change_set,
                running,
            } => {
                let failed: Vec<&str> = running
                    .hooks
                    .iter()
                    .filter(|h| !h.ok)
                    .map(|h| h.command.as_str())
                    .collect();
                tracing::info!(
                    commit = %commit,
                    change_set = %change_set.id,
                    entries = change_set.keys.len(),
                    "follow: applied commit {commit} of {}",
                    self.settings.branch
                );
                if !failed.is_empty() {
                    tracing::warn!(hooks = ?failed, "follow: hooks failed after commit {commit}");
                }
                Ok(true)
            }
            Response::Unchanged => Ok(true),
            Response::Stale { .. } => Ok(false),
            Response::Error { message, .. } | Response::Denied { message } => Err(format!(
                "commit {commit} was refused by the agent: {message}"
            )),
            other => Err(format!(
                "unexpected answer to the follower's apply: {other:?}"
            )),
        }
    }

    fn fail(&self, inner: &mut Inner, error: String) {
        inner.last_error = Some(error.clone());
        self.note(inner, format!("error: {error}"), true);
    }

    /// Logs `what` once (until the state changes).
    fn note(&self, inner: &mut Inner, what: String, warn: bool) {
        if inner.logged == what {
            return;
        }
        let (url, branch) = (&self.settings.url, &self.settings.branch);
        if warn {
            tracing::warn!(source = %url, branch = %branch, "follow: {what}");
        } else {
            tracing::info!(source = %url, branch = %branch, "follow: {what}");
        }
        inner.logged = what;
    }

    /// What `status` shows of the follower: head, sync, reasons, when self-heal is due,
    /// last error. Reads the head again (a remote as last fetched).
    fn status_of<S: Store, A: Applier>(&self, node: &Node<S, A>, out: &mut SyncStatus) {
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
                if a.plan.is_empty() {
                    out.sync = Sync::Synced;
                } else {
                    out.sync = Sync::OutOfSync;
                    let live = node.live().unwrap_or_default();
                    let sets = node.change_sets().unwrap_or_default();
                    if !a.known {
                        out.reasons.push(format!(
                            "commit {} (the head of {}) is not applied yet",
                            short(&commit_of(&a.plan.origin)),
                            f.branch
                        ));
                    }
                    out.reasons.extend(reasons(&a.plan, &live, &sets));
                    if a.known && f.self_heal {
                        out.heal_at_ms = inner.drift.as_ref().map(|d| d.since_ms + f.grace_ms);
                    }
                }
            }
        }
        out.last_error = inner.last_error.clone();
    }
}

fn commit_of(origin: &Origin) -> String {
    match &origin.source {
        Source::Git { commit } => commit.clone(),
        Source::Cli => String::new(),
    }
}

/// A commit id as `status` and the log lines print it.
fn short(commit: &str) -> String {
    commit.chars().take(10).collect()
}

fn commit_info(origin: &Origin) -> CommitInfo {
    CommitInfo {
        commit: commit_of(origin),
        author: origin.author.clone(),
        message: origin.message.lines().next().unwrap_or_default().to_owned(),
    }
}

/// Each entry `plan` changes, with what differs and which change set wrote the live
/// value.
fn reasons(plan: &Plan, live: &Live, sets: &[ChangeSet]) -> Vec<String> {
    plan.actions
        .iter()
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
        .map(|cs| {
            cs.meta
                .message
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    format!(
        ": written by {} on {} ({}, change set {}: \"{message}\")",
        m.user,
        m.host,
        m.source,
        entry.stamp.change_set()
    )
}

/// The newest change set stamped with a commit.
fn last_applied(sets: &[ChangeSet]) -> Option<&ChangeSet> {
    sets.iter()
        .filter(|cs| matches!(cs.meta.source, Source::Git { .. }))
        .max_by(|a, b| a.version.cmp(&b.version))
}

/// Whether `sets` say a follower in mode apply keeps the cluster at a branch: the newest
/// change set stamped with a commit was made by one.
pub fn followed_by_log(sets: &[ChangeSet]) -> Option<&ChangeSet> {
    last_applied(sets).filter(|cs| cs.meta.user == FOLLOW_USER)
}

/// For a member that follows nothing: the entries whose live value differs from what the
/// last applied commit left (the state as of its change set), with who changed them.
fn drift_from_log(last: &ChangeSet, sets: &[ChangeSet], live: &Live) -> Vec<String> {
    let then = state_as_of(sets, &last.version);
    let keys: BTreeSet<&Key> = then.keys().chain(live.keys()).collect();
    let mut out = Vec::new();
    for key in keys.into_iter().filter(|k| k.is_declared_by_repos()) {
        let want = then.get(key).cloned().flatten();
        let have = live.get(key).and_then(|e| e.value.clone());
        // What the mesh learnt of a machine (host key, peer address) is no repo's.
        let want = match (want, &have) {
            (Some(EntryValue::Machine(w)), Some(EntryValue::Machine(h))) => {
                Some(EntryValue::Machine(w.with_mesh_facts_of(h)))
            }
            (w, _) => w,
        };
        if want != have {
            let what = match (&want, &have) {
                (Some(_), None) => "is missing",
                (None, _) => "is not in the commit",
                _ => "differs",
            };
            out.push(format!("{key} {what}{}", written_by(live, sets, key)));
        }
    }
    out
}

/// The health of the node's last run.
fn last_run<S: Store, A: Applier>(node: &Node<S, A>) -> LastRun {
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
    let mut out = SyncStatus {
        machine: node.machine().to_string(),
        source: None,
        head: None,
        last_applied: last.map(|cs| AppliedCommit {
            commit: CommitInfo {
                commit: match &cs.meta.source {
                    Source::Git { commit } => commit.clone(),
                    Source::Cli => String::new(),
                },
                author: cs.meta.author.clone(),
                message: cs
                    .meta
                    .message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            },
            change_set: cs.id(),
            wall_ms: cs.wall_ms,
            user: cs.meta.user.clone(),
            host: cs.meta.host.clone(),
        }),
        sync: Sync::Unknown,
        compared_with: "last-applied".into(),
        reasons: Vec::new(),
        heal_at_ms: None,
        last_error: None,
        last_run: last_run(node),
    };
    match (follower, last) {
        (Some(f), _) => f.status_of(node, &mut out),
        (None, None) => out.reasons.push(
            "no commit has been applied to this cluster yet, and this machine follows no repo"
                .into(),
        ),
        (None, Some(last)) => {
            let live = node.live().map_err(|e| e.to_string())?;
            out.reasons = drift_from_log(last, &sets, &live);
            out.sync = if out.reasons.is_empty() {
                Sync::Synced
            } else {
                Sync::OutOfSync
            };
        }
    }
    Ok(out)
}

/// Runs the follower of `agent` until the runtime stops: on every interval (fetching a
/// remote), on every change of the followed repository's refs (a local one), on every
/// change set that reaches the store (a difference from the head, to report or heal),
/// and when a self-heal is due. Call inside the agent's runtime.
pub fn spawn(agent: Arc<super::Agent>) {
    let Some(follower) = agent.follower.clone() else {
        return;
    };
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        // Kept for as long as the loop runs: dropping it stops the watching.
        let _watcher = if follower.settings.is_remote() {
            None
        } else {
            watch(&follower.settings.url, tx)
        };
        let mut changes = agent.node.subscribe();
        let mut interval =
            tokio::time::interval(Duration::from_millis(follower.settings.interval_ms));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            let fetch = tokio::select! {
                _ = interval.tick() => true,
                Some(()) = rx.recv() => {
                    // git writes a ref in several steps (lock, write, rename): let it
                    // finish, then take every event of the burst as one.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while rx.try_recv().is_ok() {}
                    false
                }
                r = changes.recv() => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    false
                }
                () = async { tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)).await }, if due.is_some() => false,
            };
            let (a, f) = (agent.clone(), follower.clone());
            let next = tokio::task::spawn_blocking(move || {
                f.reconcile(&a.node, fetch, crate::state::wall_ms())
            })
            .await
            .unwrap_or(None);
            due = next.map(|at| {
                let wait = at.saturating_sub(crate::state::wall_ms());
                tokio::time::Instant::now() + Duration::from_millis(wait)
            });
        }
    });
}

/// Watches the refs of the repository at `path`: its git directory (`HEAD`,
/// `packed-refs`) and, recursively, `refs/`. `None` (logged): the interval alone is used.
fn watch(
    path: &str,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let dir = match crate::source::refs_dir(std::path::Path::new(path)) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("follow: cannot watch {path} ({e}); reading it on the interval");
            return None;
        }
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|e| tracing::warn!("follow: cannot watch {path}: {e}; reading it on the interval"))
    .ok()?;
    let watched = watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .and_then(|()| watcher.watch(&dir.join("refs"), RecursiveMode::Recursive));
    if let Err(e) = watched {
        tracing::warn!(
            "follow: cannot watch {}: {e}; reading it on the interval",
            dir.display()
        );
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::applier::MemoryApplier;
    use crate::agent::auth::Auth;
    use crate::agent::core::Core;
    use crate::model::MachineName;
    use crate::source::git;
    use crate::state::MemoryStore;

    type TestNode = Node<MemoryStore, MemoryApplier>;

    fn node() -> TestNode {
        let key =
            russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
                .unwrap();
        let core = Core::new(
            MemoryStore::default(),
            MachineName::new("lab1").unwrap(),
            "10.1.0.1".into(),
        )
        .unwrap();
        let node = Node::new(
            core,
            Auth::new(key.public_key().clone(), 0),
            MemoryApplier::default(),
        );
        node.start();
        node
    }

    fn commit(dir: &std::path::Path, dns: &str, message: &str) -> String {
        std::fs::write(
            dir.join("cluster.kdl"),
            format!(
                "cluster \"c\" {{\n    dns {{ server \"{dns}\"; }}\n}}\ngroup \"Main_Group\"\nmachine \"lab1\"\n"
            ),
        )
        .unwrap();
        git::commit_all(dir, ("Ada", "ada@example.com"), message).unwrap()
    }

    fn follower(dir: &std::path::Path, mode: FollowMode, self_heal: bool) -> Follower {
        Follower::new(
            Follow {
                url: dir.display().to_string(),
                branch: "main".into(),
                interval_ms: 1000,
                mode,
                self_heal,
                grace_ms: 1000,
            },
            dir.join("unused.git"),
        )
    }

    fn stamped(node: &TestNode) -> Vec<(String, String)> {
        node.change_sets()
            .unwrap()
            .iter()
            .map(|cs| (cs.meta.source.to_string(), cs.meta.user.clone()))
            .collect()
    }

    /// An out-of-band write of the cluster's dns, as an operator's `apply` would make.
    fn apply_by_hand(node: &TestNode, dns: &str) {
        let key: Key = "cluster/dns".parse().unwrap();
        let live = node.live().unwrap();
        let value = EntryValue::from_text(&key, &format!("dns {{ server \"{dns}\"; }}")).unwrap();
        let r = node.handle(
            &Authed::user("admin", Role::Administrator),
            Request::Apply {
                writes: [(key.clone(), Some(value))].into(),
                base: [(key.clone(), Some(live[&key].stamp.version.clone()))].into(),
                origin: Origin {
                    source: Source::Cli,
                    author: "admin".into(),
                    message: "by hand".into(),
                },
            },
        );
        assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    }

    #[test]
    fn a_new_commit_is_applied_once_stamped_with_it_and_a_bad_one_is_the_last_error() {
        let dir = tempfile::tempdir().unwrap();
        let first = commit(dir.path(), "10.0.0.53", "first");
        let (n, f) = (node(), follower(dir.path(), FollowMode::Apply, false));
        assert_eq!(f.reconcile(&n, true, 1), None);
        let sets = n.change_sets().unwrap();
        let last = sets.last().unwrap();
        assert_eq!(
            last.meta.source,
            Source::Git {
                commit: first.clone()
            }
        );
        assert_eq!(
            (last.meta.user.as_str(), last.meta.message.as_str()),
            ("follow", "first")
        );
        assert_eq!(last.meta.author, "Ada <ada@example.com>");
        // Nothing to do when the live state already equals the commit: no empty change set.
        let count = sets.len();
        f.reconcile(&n, true, 2);
        assert_eq!(n.change_sets().unwrap().len(), count);
        let s = status(&n, Some(&f)).unwrap();
        assert_eq!(
            (s.sync, s.head.unwrap().commit),
            (Sync::Synced, first.clone())
        );
        assert_eq!(s.last_applied.unwrap().commit.commit, first);
        assert!(followed_by_log(&n.change_sets().unwrap()).is_some());

        // A commit that does not validate is not applied: it is the last error.
        std::fs::write(dir.path().join("bad.kdl"), "group \"Main_Group\"\n").unwrap();
        let bad = git::commit_all(dir.path(), ("Ada", "ada@example.com"), "bad").unwrap();
        f.reconcile(&n, true, 3);
        assert_eq!(n.change_sets().unwrap().len(), count);
        let s = status(&n, Some(&f)).unwrap();
        assert_eq!(s.sync, Sync::Unknown);
        let error = s.last_error.unwrap();
        assert!(
            error.contains(&format!("commit {}", &bad[..10])) && error.contains("not applied"),
            "{error}"
        );
        // A member that follows nothing judges from the log: still what `first` left.
        assert_eq!(status(&n, None).unwrap().sync, Sync::Synced);
    }

    #[test]
    fn report_mode_marks_out_of_sync_without_applying() {
        let dir = tempfile::tempdir().unwrap();
        commit(dir.path(), "10.0.0.53", "first");
        let n = node();
        follower(dir.path(), FollowMode::Apply, false).reconcile(&n, true, 1);
        let before = stamped(&n);
        let second = commit(dir.path(), "10.0.0.54", "second");
        let f = follower(dir.path(), FollowMode::Report, false);
        f.reconcile(&n, true, 2);
        assert_eq!(stamped(&n), before, "report mode applies nothing");
        let s = status(&n, Some(&f)).unwrap();
        assert_eq!(s.sync, Sync::OutOfSync);
        assert_eq!(s.head.unwrap().commit, second);
        assert!(
            s.reasons[0].contains("is not applied yet"),
            "{:?}",
            s.reasons
        );
        assert!(
            s.reasons[1].starts_with("cluster/dns differs: written by follow on lab1"),
            "{:?}",
            s.reasons
        );
    }

    #[test]
    fn self_heal_reverts_an_out_of_band_change_after_the_grace_and_off_only_reports() {
        let dir = tempfile::tempdir().unwrap();
        let head = commit(dir.path(), "10.0.0.53", "first");
        let n = node();
        let healing = follower(dir.path(), FollowMode::Apply, true);
        healing.reconcile(&n, true, 1_000);
        apply_by_hand(&n, "10.6.6.6");

        // Reported, not reverted, without self-heal.
        let reporting = follower(dir.path(), FollowMode::Apply, false);
        assert_eq!(reporting.reconcile(&n, false, 2_000), None);
        let s = status(&n, Some(&reporting)).unwrap();
        assert_eq!(s.sync, Sync::OutOfSync);
        assert!(
            s.reasons[0].contains("written by admin on lab1 (cli"),
            "{:?}",
            s.reasons
        );
        assert_eq!(s.heal_at_ms, None);
        assert_eq!(
            status(&n, None).unwrap().sync,
            Sync::OutOfSync,
            "the log says so too"
        );

        // With it: due after the grace, then reverted as a new change set of the head.
        let count = n.change_sets().unwrap().len();
        assert_eq!(healing.reconcile(&n, false, 2_000), Some(3_000));
        assert_eq!(status(&n, Some(&healing)).unwrap().heal_at_ms, Some(3_000));
        assert_eq!(
            n.change_sets().unwrap().len(),
            count,
            "not before the grace"
        );
        assert_eq!(healing.reconcile(&n, false, 3_000), None);
        let sets = n.change_sets().unwrap();
        assert_eq!(sets.len(), count + 1);
        let healed = sets.last().unwrap();
        assert_eq!(healed.meta.source, Source::Git { commit: head });
        assert!(healed.meta.message.starts_with("self-heal: back to commit"));
        let dns: Key = "cluster/dns".parse().unwrap();
        let live = n.live().unwrap()[&dns].value.clone().unwrap().to_text(&dns);
        assert!(live.contains("10.0.0.53"), "{live}");
        assert_eq!(status(&n, Some(&healing)).unwrap().sync, Sync::Synced);
    }

    #[test]
    fn a_file_url_is_fetched_into_the_mirror_and_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let head = commit(&repo, "10.0.0.53", "first");
        let remote = |url: String, mirror: &str| {
            let mut f = follower(&repo, FollowMode::Apply, false);
            f.settings.url = url;
            f.mirror = tmp.path().join(mirror);
            f
        };
        let f = remote(format!("file://{}", repo.display()), "follow.git");
        assert!(f.settings.is_remote());
        let n = node();
        let before = status(&n, Some(&f)).unwrap();
        assert_eq!(before.sync, Sync::Unknown);
        assert!(
            before
                .last_error
                .unwrap()
                .contains("has not been fetched yet")
        );
        f.reconcile(&n, true, 1);
        let sets = n.change_sets().unwrap();
        assert_eq!(
            sets.last().unwrap().meta.source,
            Source::Git { commit: head }
        );
        assert_eq!(status(&n, Some(&f)).unwrap().sync, Sync::Synced);

        let missing = remote(format!("file://{}/nowhere", tmp.path().display()), "m.git");
        missing.reconcile(&n, true, 2);
        let s = status(&n, Some(&missing)).unwrap();
        assert_eq!(s.sync, Sync::Unknown);
        assert!(s.last_error.is_some_and(|e| e.starts_with("git: ")));
        assert_eq!(n.change_sets().unwrap().len(), sets.len());
    }
}
