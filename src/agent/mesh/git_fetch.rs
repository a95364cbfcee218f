//! Every member serves the commit the cluster runs. The *applied commit* is the one
//! stamped on the newest change set that carries a commit (a push, an `apply --ref`, a
//! follower's apply): what `strata status` calls the last applied commit. A change set
//! carries the commit's id, not its objects; this keeper, one task per agent, makes the
//! member's config repo (`config.git`, [`crate::agent::git_serve`]) hold them and moves
//! its deployed branch (`main`) to the commit, so that `git clone` from any member returns
//! it and a push based on it is a fast-forward on every member.
//!
//! - **Where the objects come from**: this member's repository when a push brought them;
//!   else the repository this member's follower reads (its mirror `follow.git`, or the
//!   local repository it follows); else a peer, over the mesh ([`Query::GitPack`]) —
//!   first the member that made the change set, then every other reachable member in
//!   turn. The peer answers with a git pack (libgit2's pack builder, [`crate::source::pack`]) of what
//!   the commit reaches minus what the asker's branch tips reach, in chunks of
//!   [`CHUNK`](super::git_pack::CHUNK) bytes (hex in the envelope's JSON, which the frame's deflate takes back to
//!   about the pack's size), each chunk a question and an answer; the pack is built once
//!   and kept for the next chunks ([`KEEP_BUILT`](super::git_pack::KEEP_BUILT)), named by its checksum, so a pack
//!   rebuilt in between restarts the transfer instead of mixing two. A pack larger
//!   than [`MAX_PACK`](super::git_pack::MAX_PACK) is refused by the peer: then no member can send it, the asker says
//!   so in its log and `status`, and pushing the commit to that member by hand serves
//!   it (`git push ssh://…/config COMMIT:main`; its hook finds nothing to apply).
//! - **Trust**: a pack is written through the object database's pack writer, which
//!   indexes it and checks its checksum; then the asker checks that the commit and every
//!   object it reaches are present ([`crate::source::pack::missing`]). A peer whose pack fails
//!   either is logged, its direct link is dropped (dialed again after the usual pause,
//!   as after a garbage frame) and it is not asked again for [`DISTRUST`]; the next
//!   member is. What a rejected pack brought stays unreferenced (nothing points at it;
//!   `git gc` drops it).
//! - **Only forward**: the branch moves when the applied commit descends from its tip,
//!   by a compare-and-swap on the ref, and never while a push is being received here
//!   (receive-pack moves it itself once its hook succeeds). When the applied commit is
//!   older than the branch (a push whose commit had nothing to apply moved it on) or off
//!   its line (a forced push to another member), the branch is left alone, said once in
//!   the log and by `status`.
//! - **What counts as applied**: a member merges and runs a change set as soon as it
//!   holds it — the configuration never waits for git, and the replication core
//!   ([`crate::replica`]) knows nothing of this. The commit counts as applied *in this
//!   member's repository* once its objects are complete here and the branch is at it;
//!   until then `strata status` says where the branch is and why it is not there yet
//!   (objects being fetched: tries, last error, next try; or the branch left alone), and
//!   a clone returns the branch as it is.
//! - **When**: at start (the change log read once), on every change set that brings a
//!   newer applied commit (a member that was down asks as soon as its change sets come
//!   back), and after a failed fetch again after [`RETRY_FIRST`], doubling up to
//!   [`RETRY_MAX`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use git2::{Oid, Repository};

use crate::agent::Agent;
use crate::agent::git_serve::{self, DEPLOYED_BRANCH};
use crate::model::{MachineName, Version};
use crate::protocol::sync_status::{Served, ServedState};
use crate::protocol::wire::Query;

use super::git_pack::{FetchError, Packs, fetch_from};
use crate::source::pack::{self, Advance, short};
use crate::state::{ChangeSet, Source, wall_ms};

/// How long a member that sent a bad pack is not asked again.
pub const DISTRUST: Duration = Duration::from_secs(600);

/// The pause after the first failed fetch of a commit; it doubles up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_millis(500);
/// The longest pause between two fetches of one commit.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

/// The applied commit this member's repository should serve.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// Its id, as the change set carries it.
    commit: String,
    /// The change set's version (whose origin made it, and holds the objects first).
    version: Version,
}

/// Where the keeper stands with its target.
#[derive(Default)]
struct Progress {
    target: Option<Target>,
    /// The last commit found complete in the repository.
    complete: Option<Oid>,
    /// Fetches tried for the target.
    tries: u32,
    /// Why the last one failed.
    last_error: Option<String>,
    /// When the next is due (wall ms).
    next_at_ms: Option<u64>,
    /// Why the branch is left alone, if it is.
    held: Option<String>,
    /// Members that sent a bad pack, and until when they are not asked.
    distrusted: BTreeMap<MachineName, Instant>,
}

impl Progress {
    fn retarget(&mut self, target: Option<Target>) {
        if self.target != target {
            self.target = target;
            self.tries = 0;
            self.last_error = None;
            self.next_at_ms = None;
            self.held = None;
        }
    }
}

/// The keeper's state, shared by its task, the answers to peers, the push service and
/// `status`.
#[derive(Default)]
pub struct GitFetch {
    progress: Mutex<Progress>,
    /// Packs built for peers ([`Packs`]).
    pub packs: Packs,
    /// Pushes being received by this member now.
    receiving: AtomicUsize,
}

/// Held while a push is received (`git receive-pack` runs): the keeper leaves the
/// branch to it.
pub struct Receiving<'a>(&'a AtomicUsize);

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl GitFetch {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks a push as being received until the guard is dropped.
    pub fn receiving(&self) -> Receiving<'_> {
        self.receiving.fetch_add(1, Ordering::SeqCst);
        Receiving(&self.receiving)
    }

    fn pushes(&self) -> usize {
        self.receiving.load(Ordering::SeqCst)
    }

    /// Takes `cs`'s commit as the target when it carries one and is newer than the
    /// target; true when it is.
    fn offer(&self, cs: &ChangeSet) -> bool {
        let Source::Git { commit } = &cs.meta.source else {
            return false;
        };
        let mut p = self.lock();
        if p.target.as_ref().is_some_and(|t| t.version >= cs.version) {
            return false;
        }
        p.retarget(Some(Target {
            commit: commit.clone(),
            version: cs.version.clone(),
        }));
        true
    }

    /// Reads the target from the whole change log (at start, and after the store was
    /// replaced or the keeper fell behind it).
    fn reread(&self, sets: &[ChangeSet]) {
        let target =
            crate::agent::follow::last_applied(sets).and_then(|cs| match &cs.meta.source {
                Source::Git { commit } => Some(Target {
                    commit: commit.clone(),
                    version: cs.version.clone(),
                }),
                Source::Cli => None,
            });
        self.lock().retarget(target);
    }

    /// A failed fetch: counted, said (in the log when it says something new), and the
    /// pause before the next.
    fn failed(&self, why: String) -> Duration {
        let mut p = self.lock();
        p.tries += 1;
        let pause = RETRY_FIRST
            .saturating_mul(1 << p.tries.saturating_sub(1).min(10))
            .min(RETRY_MAX);
        let commit = p
            .target
            .as_ref()
            .map(|t| t.commit.clone())
            .unwrap_or_default();
        if p.last_error.as_deref() != Some(why.as_str()) {
            tracing::info!(
                "config repo: the objects of commit {} are not here yet: {why}; trying again in {pause:?}",
                commit.chars().take(10).collect::<String>()
            );
        }
        p.last_error = Some(why);
        p.next_at_ms = Some(wall_ms() + pause.as_millis() as u64);
        pause
    }

    /// The branch, at `tip`, is left alone: said once.
    fn hold(&self, tip: Option<Oid>, why: String) {
        let mut p = self.lock();
        if p.held.as_deref() != Some(why.as_str()) {
            let at = tip
                .map(|t| format!(" (at {})", short(&t)))
                .unwrap_or_default();
            tracing::info!("config repo: {DEPLOYED_BRANCH}{at} is left alone: {why}");
        }
        p.held = Some(why);
        p.last_error = None;
        p.next_at_ms = None;
    }

    /// What `git clone` from this member returns (the repository at `dir`), against
    /// `last`, the last applied commit from the change log.
    pub fn served(&self, dir: &Path, last: Option<&str>) -> Served {
        let tip = pack::tip_of(dir, DEPLOYED_BRANCH);
        let state = match last {
            None => ServedState::NothingApplied,
            Some(c) if tip.is_some_and(|t| t.to_string() == c) => ServedState::Current,
            Some(c) => match tip.and_then(|t| left_alone(dir, t, c)) {
                Some(why) => ServedState::Held { why },
                None => {
                    let p = self.lock();
                    let mine = p.target.as_ref().is_some_and(|t| t.commit == c);
                    ServedState::Fetching {
                        tries: if mine { p.tries } else { 0 },
                        last_error: p.last_error.clone().filter(|_| mine),
                        next_at_ms: p.next_at_ms.filter(|_| mine),
                    }
                }
            },
        };
        Served {
            branch: DEPLOYED_BRANCH.to_owned(),
            commit: tip.map(|t| t.to_string()),
            state,
        }
    }

    /// Whether `commit` and everything it reaches are in `repo` (remembered once seen).
    fn is_complete(&self, repo: &Repository, commit: Oid) -> bool {
        if self.lock().complete == Some(commit) {
            return true;
        }
        let tips = pack::tips(repo);
        // A branch at or past the commit holds it whole: git checks what a push brings.
        let done = tips
            .iter()
            .any(|t| *t == commit || repo.graph_descendant_of(*t, commit).unwrap_or(false))
            || pack::missing(repo, commit, &tips).is_none();
        if done {
            self.lock().complete = Some(commit);
        }
        done
    }
}

/// Why the branch of the repository at `dir`, at `tip`, stays off commit `last`: when
/// the commit's history is here and the branch is ahead of it or off its line.
fn left_alone(dir: &Path, tip: Oid, last: &str) -> Option<String> {
    let commit = Oid::from_str(last).ok()?;
    let repo = Repository::open_bare(dir).ok()?;
    if repo.graph_descendant_of(tip, commit).ok()? {
        Some(held_why(true, &commit))
    } else if !repo.graph_descendant_of(commit, tip).ok()? {
        Some(held_why(false, &commit))
    } else {
        None
    }
}

/// One look: makes the repository hold the target and moves the branch to it. Returns
/// when to look again (`None`: done until the next applied commit). Blocking.
fn step(agent: &Agent) -> Option<Duration> {
    let git = &agent.git;
    let target = git.lock().target.clone()?;
    let Ok(commit) = Oid::from_str(&target.commit) else {
        git.hold(None, format!("`{}` is not a commit id", target.commit));
        return None;
    };
    let repo = match git_serve::repository(agent)
        .and_then(|dir| Repository::open_bare(dir).map_err(|e| e.message().to_owned()))
    {
        Ok(r) => r,
        Err(e) => return Some(git.failed(format!("the config repo cannot be opened: {e}"))),
    };
    if !git.is_complete(&repo, commit) {
        if git.pushes() > 0 {
            // A push being received may be bringing it.
            return Some(RETRY_FIRST);
        }
        let got = match from_follower(agent, &repo, commit) {
            Some(from) => Ok(from),
            None => from_peers(agent, &repo, &target, commit).map(|m| m.to_string()),
        };
        match got {
            Ok(from) => {
                tracing::info!(
                    "config repo: the objects of commit {} came from {from}",
                    short(&commit)
                );
                git.lock().complete = Some(commit);
            }
            Err(why) => return Some(git.failed(why)),
        }
    }
    if git.pushes() > 0 {
        return Some(RETRY_FIRST);
    }
    match pack::advance(&repo, DEPLOYED_BRANCH, commit) {
        Ok(Advance::Created) | Ok(Advance::Moved { .. }) => {
            tracing::info!(
                "config repo: {DEPLOYED_BRANCH} is at commit {}, the one the cluster runs",
                short(&commit)
            );
            git.lock().held = None;
        }
        Ok(Advance::Already) => git.lock().held = None,
        Ok(Advance::Ahead { tip }) => git.hold(Some(tip), held_why(true, &commit)),
        Ok(Advance::Diverged { tip }) => git.hold(Some(tip), held_why(false, &commit)),
        // A push moved the branch in between: look again.
        Err(e) => {
            return Some(git.failed(format!("cannot move {DEPLOYED_BRANCH}: {}", e.message())));
        }
    }
    let mut p = git.lock();
    p.last_error = None;
    p.next_at_ms = None;
    None
}

/// Why the branch is left alone at a tip that descends from the applied `commit`
/// (`ahead`), or that is off its line.
fn held_why(ahead: bool, commit: &Oid) -> String {
    let c = short(commit);
    if ahead {
        format!("it descends from the last applied commit {c}, which is older")
    } else {
        format!("the last applied commit {c} does not descend from it")
    }
}

/// Copies `commit` from the repository this member's follower reads, if it holds it;
/// `Some(where)` when the commit is complete here after.
fn from_follower(agent: &Agent, repo: &Repository, commit: Oid) -> Option<String> {
    let follower = agent.follower.as_ref()?;
    let from = follower.repository().ok()?;
    if !from.odb().ok()?.exists(commit) {
        return None;
    }
    if let Err(e) = pack::copy(&from, repo, commit) {
        tracing::warn!("config repo: cannot copy from the followed repository: {e}");
        return None;
    }
    pack::missing(repo, commit, &pack::tips(repo))
        .is_none()
        .then(|| format!("the followed repository ({})", follower.settings.url))
}

/// Fetches `commit` from the first peer that sends it whole: the member that made the
/// change set, then every other reachable member. Blocking.
fn from_peers(
    agent: &Agent,
    repo: &Repository,
    target: &Target,
    commit: Oid,
) -> Result<MachineName, String> {
    let snap = agent
        .mesh
        .get()
        .and_then(super::Mesh::snapshot)
        .ok_or("the mesh is not running")?;
    let mesh = agent.mesh.get().ok_or("the mesh is not running")?;
    let me = agent.node.machine();
    let (distrusted, have) = {
        let mut p = agent.git.lock();
        let now = Instant::now();
        p.distrusted.retain(|_, until| *until > now);
        let mut have = pack::tips(repo);
        have.extend(p.complete.filter(|c| !have.contains(c)));
        (p.distrusted.keys().cloned().collect::<BTreeSet<_>>(), have)
    };
    let mut order: Vec<MachineName> = snap
        .routes
        .keys()
        .filter(|m| *m != me && !distrusted.contains(*m))
        .cloned()
        .collect();
    if let Some(i) = order.iter().position(|m| *m == target.version.origin) {
        let origin = order.remove(i);
        order.insert(0, origin);
    }
    if order.is_empty() {
        return Err(if distrusted.is_empty() {
            "no other member can be reached".into()
        } else {
            "no other member can be reached that sent no bad pack".into()
        });
    }
    let mut why = Vec::new();
    for peer in order {
        let ask = |q: Query, within: Duration| {
            mesh.ask_all(std::slice::from_ref(&peer), &q, within)
                .remove(&peer)
        };
        match fetch_from(repo, commit, &have, ask) {
            Ok(()) => return Ok(peer),
            Err(FetchError::Failed(e)) => why.push(format!("{peer}: {e}")),
            Err(FetchError::Untrusted(e)) => {
                tracing::warn!(%peer, "config repo: not asked again for {} min: {e}", DISTRUST.as_secs() / 60);
                mesh.drop_link(&peer, format!("a bad git pack: {e}"));
                agent
                    .git
                    .lock()
                    .distrusted
                    .insert(peer.clone(), Instant::now() + DISTRUST);
                why.push(format!("{peer}: {e} (not asked again for a while)"));
            }
        }
    }
    Err(why.join("; "))
}

/// Runs the keeper of `agent` until the runtime stops. Call inside the agent's runtime,
/// once its mesh is set.
pub fn spawn(agent: Arc<Agent>) {
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        let mut changes = agent.node.subscribe();
        let mut reread = true;
        let mut due = Some(tokio::time::Instant::now());
        loop {
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = changes.recv() => match r {
                    Ok(c) if c.replaced => reread = true,
                    Ok(c) => if agent.git.offer(&c.change_set) {
                        due = Some(tokio::time::Instant::now());
                    },
                    Err(RecvError::Lagged(_)) => reread = true,
                    Err(RecvError::Closed) => return,
                },
                () = sleep => {
                    let a = agent.clone();
                    let read = std::mem::take(&mut reread);
                    let next = tokio::task::spawn_blocking(move || {
                        if read {
                            match a.node.change_sets() {
                                Ok(sets) => a.git.reread(&sets),
                                Err(e) => tracing::error!("config repo: cannot read the change sets: {e}"),
                            }
                        }
                        step(&a)
                    })
                    .await
                    .unwrap_or(Some(RETRY_MAX));
                    due = next.map(|d| tokio::time::Instant::now() + d);
                }
            }
            if reread {
                due = Some(tokio::time::Instant::now());
            }
        }
    });
}

#[cfg(test)]
#[path = "git_fetch_tests.rs"]
mod tests;
