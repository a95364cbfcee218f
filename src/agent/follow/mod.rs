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
//! The status `strata status` shows is assembled in [`status`](mod@status): for a follower from its
//! head, for any other member from the change log. [`watch`] runs the follower.

mod status;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::cluster::applier::Applier;
use crate::cluster::auth::Authed;
use crate::cluster::node::Node;
use crate::config::agent_kdl::{Follow, FollowMode};
use crate::plan::{Entries, Origin, Plan, desired, diff};
use crate::protocol::{Request, Response};
use crate::schema::Catalogue;
use crate::state::{ChangeSet, Live, Source, Store};

use status::{commit_of, reasons, short};
pub use status::{followed_by_log, last_applied, status};
pub use watch::spawn;

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

impl Inner {
    /// Whether `head` is known — in the change log (`sets`), or seen synced — so that a
    /// difference from it is drift rather than a commit not applied yet.
    fn knows(&self, head: &str, sets: &[ChangeSet]) -> bool {
        self.seen_synced.contains(head)
            || sets
                .iter()
                .any(|cs| matches!(&cs.meta.source, Source::Git { commit } if commit == head))
    }
}

/// One agent's follower of one branch.
pub struct Follower {
    /// The `source` setting.
    pub settings: Follow,
    /// Where a remote is fetched to (a bare repository in the state dir).
    mirror: PathBuf,
    inner: Mutex<Inner>,
    /// Told once per change of state what the cluster's notifications carry.
    alerts: Option<AlertSink>,
}

/// What a follower tells the cluster's notifications ([`crate::agent::notify`]), once
/// each time its state changes: the kind (`out-of-sync`, `apply-failed`, `self-heal`),
/// the severity, and one line for people.
pub type AlertSink =
    Box<dyn Fn(&'static str, crate::agent::notify::Severity, String) + Send + Sync>;

/// What one look at the head found: the plan, and the live state it was made against.
struct Assessment {
    plan: Plan,
    live: Live,
}

impl Follower {
    /// A follower of `settings`, fetching remotes into `mirror`.
    pub fn new(settings: Follow, mirror: PathBuf) -> Follower {
        Follower {
            settings,
            mirror,
            inner: Mutex::new(Inner::default()),
            alerts: None,
        }
    }

    /// This follower, telling `sink` what the cluster's notifications carry.
    pub fn with_alerts(mut self, sink: AlertSink) -> Follower {
        self.alerts = Some(sink);
        self
    }

    fn alert(&self, kind: &'static str, severity: crate::agent::notify::Severity, line: String) {
        if let Some(sink) = &self.alerts {
            sink(kind, severity, line);
        }
    }

    /// The repository the followed commits' objects are in: the mirror of a remote, or
    /// the local repository followed (the agent's config repo copies them from there).
    pub fn repository(&self) -> Result<git2::Repository, git2::Error> {
        if self.settings.is_remote() {
            git2::Repository::open_bare(&self.mirror)
        } else {
            git2::Repository::discover(&self.settings.url)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the head (from the mirror for a remote) and, when it moved, its tree.
    fn load<'i>(&self, inner: &'i mut Inner) -> Result<&'i Desired, String> {
        let f = &self.settings;
        let mirror = if f.is_remote() {
            Some(
                git2::Repository::open_bare(&self.mirror)
                    .map_err(|_| format!("{} has not been fetched yet", f.url))?,
            )
        } else {
            None
        };
        let head = match &mirror {
            Some(repo) => crate::source::repo_head_of(repo, &format!("refs/heads/{}", f.branch)),
            None => crate::source::head_of(std::path::Path::new(&f.url), &f.branch),
        }
        .map_err(|e| format!("{e}"))?;
        if inner.desired.as_ref().is_none_or(|d| d.commit != head) {
            inner.desired = None;
            let snapshot = match &mirror {
                Some(repo) => crate::source::read_repo_ref(repo, &head),
                None => crate::source::read_ref(std::path::Path::new(&f.url), &head),
            }
            .map_err(|e| format!("{e}"))?;
            let checked = crate::source::check(&snapshot);
            if checked.diags.has_errors() {
                let first: Vec<String> = checked
                    .diags
                    .problems()
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
        let d = self.load(inner)?;
        let plan = diff(&d.entries, &d.catalogue, &live, d.origin.clone());
        Ok(Assessment { plan, live })
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
            let head = commit_of(&a.plan.origin);
            let commit = short(&head);
            if a.plan.is_empty() {
                inner.seen_synced.insert(head);
                inner.drift = None;
                inner.last_error = None;
                self.note(&mut inner, format!("synced with commit {commit}"), false);
                return None;
            }
            let sets = match node.change_sets() {
                Ok(sets) => sets,
                Err(e) => {
                    self.fail(&mut inner, e.to_string());
                    return None;
                }
            };
            let known = inner.knows(&head, &sets);
            // Once the head was applied, what its drift-ignore rules cover is neither
            // reported nor reverted, as `status` and `check` leave it alone.
            let mut plan = a.plan.clone();
            if known {
                let mut ignoring = status::head_rules(inner.desired.as_ref(), now_ms);
                plan.actions
                    .retain(|act| !status::ignores(&mut ignoring, act));
            }
            let reasons = reasons(&plan.actions, &a.live, &sets);
            let mut origin = a.plan.origin.clone();
            if !known {
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
                if plan.actions.is_empty() {
                    inner.seen_synced.insert(head);
                    inner.drift = None;
                    inner.last_error = None;
                    self.note(
                        &mut inner,
                        format!("synced with commit {commit} (differences drift-ignore rules cover are left alone)"),
                        false,
                    );
                    return None;
                }
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
            let healing = origin.message.starts_with("self-heal");
            match self.apply(node, &plan, origin) {
                Ok(true) => {
                    inner.drift = None;
                    inner.last_error = None;
                    if healing {
                        self.alert(
                            "self-heal",
                            crate::agent::notify::Severity::Info,
                            format!(
                                "self-heal: the cluster was put back to commit {commit} of {}, undoing a change that did not come from it",
                                f.branch
                            ),
                        );
                    }
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
        let who = Authed::follower(FOLLOW_USER);
        let response = node.handle(
            &who,
            Request::Apply {
                writes: plan.writes(),
                base: plan.base.clone(),
                origin,
                override_follower: false,
                break_glass: None,
                confirm_within_ms: None,
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
            let kind = if what.starts_with("out of sync") {
                "out-of-sync"
            } else {
                "apply-failed"
            };
            self.alert(
                kind,
                crate::agent::notify::Severity::Warning,
                format!("{url} {branch}: {what}"),
            );
        } else {
            tracing::info!(source = %url, branch = %branch, "follow: {what}");
        }
        inner.logged = what;
    }
}
