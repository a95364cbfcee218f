//! A node: one machine's store, clock, catalogue, logins and applier, and the one
//! post-commit pipeline every writer goes through. Generic over the store and the
//! applier, so the whole of it runs in memory in tests.
//!
//! Concurrency: two locks, always taken in this order — the store lock (commits, reads
//! for plan and log) and the run lock (the applier). After a commit the pipeline rereads
//! the store, refreshes the users and the catalogue, takes the run lock, and only then
//! lets go of the store lock; it resolves and runs the result holding only the run lock.
//! So results run one change set at a time, in commit order, while a slow hook holds up
//! no plan or log, only the next change set's run.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::broadcast;

use super::applier::{Applier, running_config};
use super::auth::{Auth, Authed, Principal};
use super::caller::Refusal;
use super::core::Core;
use super::users::parse_users;
use crate::config::Diagnostics;
use crate::model::{EntryValue, Key, MachineName, Mode, OriginKind, SectionName, Source};
use crate::plan::Origin;
use crate::protocol::{LocalEdit, Response, RunReport, RunState};
use crate::resolve::entries::catalogue_of;
use crate::schema::Catalogue;
use crate::state::{
    ChangeSet, CommitError, Health, Live, Store, StoreError, StoreFailure, Version,
};

/// One machine's agent state, without sockets or files of its own.
pub struct Node<S, A> {
    core: Mutex<Core<S>>,
    /// Held while the applier runs (see the module header).
    run: Mutex<()>,
    /// The catalogue the store records (built-in selection and the repo's own schemas),
    /// with the versions of the entries it was built from: most changes (a membership,
    /// a section) leave them alone, and it is not built again.
    catalogue: RwLock<(Arc<Catalogue>, Option<Vec<Version>>)>,
    /// The members' and pending machines' host keys as last read (text → key).
    host_keys: Mutex<HashMap<String, russh::keys::PublicKey>>,
    /// Who may log in, refreshed from the store's `users` section.
    pub auth: Auth,
    applier: A,
    /// The core's machine name, copied so hello and the pipeline read it without the
    /// store lock.
    machine: MachineName,
    /// Every change set committed here or merged from elsewhere, for the mesh to spread.
    changes: broadcast::Sender<Changed>,
    /// When the latest change sets were run here (version → wall ms), for `apply`'s
    /// per-machine report; the oldest are forgotten past [`APPLIED_KEPT`].
    applied: Mutex<BTreeMap<Version, Option<u64>>>,
    /// The last run of the running config (wall ms it ended, what it did), for
    /// `status`'s health.
    last_run: Mutex<Option<(u64, RunReport)>>,
    /// Whether the store's writes fail, read without the store lock.
    store_health: Health,
    /// Told, after every change, which cluster the store names (`None`: none): the
    /// agent keeps its membership record with it, and frees memory.
    on_change: Option<ChangeHook>,
    /// Whether the agent's config repo holds a commit with this author and message.
    holds_commit: Option<CommitCheck>,
    /// This machine's host key: what it is, whatever it is named ([`super::rename`]).
    host_key: Option<russh::keys::PublicKey>,
    /// Told when a change renamed this machine, with its new name.
    on_rename: Option<RenameHook>,
    /// The hooks that failed when a change set ran here, by its version.
    failed_runs: Mutex<BTreeMap<Version, Vec<String>>>,
}

/// What [`Node::with_rename_hook`] is given.
pub type RenameHook = Box<dyn Fn(&MachineName) + Send + Sync>;

/// What [`Node::with_change_hook`] is given.
pub type ChangeHook = Box<dyn Fn(Option<&str>) + Send + Sync>;

/// What [`Node::with_commit_check`] is given: whether the machine's own config repo holds
/// the origin's commit, with its author and message.
pub type CommitCheck = Box<dyn Fn(&Origin) -> bool + Send + Sync>;

/// How many change sets' run times a node remembers.
const APPLIED_KEPT: usize = 4096;

/// A change set that reached this node's store.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The change set.
    pub change_set: Arc<ChangeSet>,
    /// Committed here (not merged from a peer).
    pub local: bool,
    /// The store was replaced (a join or a leave) and now holds only this history.
    pub replaced: bool,
    /// Writes of this machine the change set beat without having seen them (merged
    /// from a peer): lost writes the conflict log now lists.
    pub lost: Vec<crate::state::LostWrite>,
}

/// How many changes the mesh may fall behind before it resyncs instead.
const CHANGES_QUEUE: usize = 1024;

impl<S: Store, A: Applier> Node<S, A> {
    /// A node over `core`; call [`Node::start`] to load users and catalogue and bring
    /// what runs up to date.
    pub fn new(core: Core<S>, auth: Auth, applier: A) -> Node<S, A> {
        let machine = core.machine.clone();
        let store_health = core.store.health();
        Node {
            core: Mutex::new(core),
            run: Mutex::new(()),
            catalogue: RwLock::new((Arc::new(Catalogue::builtin()), None)),
            host_keys: Mutex::new(HashMap::new()),
            auth,
            applier,
            machine,
            changes: broadcast::channel(CHANGES_QUEUE).0,
            applied: Mutex::new(BTreeMap::new()),
            last_run: Mutex::new(None),
            on_change: None,
            holds_commit: None,
            host_key: None,
            on_rename: None,
            failed_runs: Mutex::default(),
            store_health,
        }
    }

    /// This node, telling `hook` after every change (and at [`Node::start`]) which
    /// cluster its store names.
    pub fn with_change_hook(mut self, hook: ChangeHook) -> Node<S, A> {
        self.on_change = Some(hook);
        self
    }

    /// This node, knowing this machine by its host key `key` too: a change that moves
    /// the key's membership to another name renames it (`hook` is told the new name)
    /// instead of removing it ([`super::rename`]).
    pub fn with_rename_hook(mut self, key: russh::keys::PublicKey, hook: RenameHook) -> Node<S, A> {
        self.host_key = Some(key);
        self.on_rename = Some(hook);
        self
    }

    /// This node, asking `check` whether the machine's config repo holds a commit that is
    /// applied here (without one, no commit a client names is verified).
    pub fn with_commit_check(mut self, check: CommitCheck) -> Node<S, A> {
        self.holds_commit = Some(check);
        self
    }

    /// How far `origin`, applied by `who`, is vouched for: the follower's own applies by
    /// the path they come through, any other commit only if this machine's config repo
    /// holds it as claimed; everything else is recorded as claimed.
    pub fn origin_kind(&self, who: &Authed, origin: &Origin) -> OriginKind {
        match origin.source {
            Source::Cli => OriginKind::Claimed,
            Source::Git { .. } if who.principal == Principal::Follower => OriginKind::Follower,
            Source::Git { .. } if self.holds_commit.as_ref().is_some_and(|c| c(origin)) => {
                OriginKind::Repo
            }
            Source::Git { .. } => OriginKind::Claimed,
        }
    }

    /// Every change set that reaches the store from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Changed> {
        self.changes.subscribe()
    }

    fn announce(&self, change_set: &ChangeSet, local: bool, lost: Vec<crate::state::LostWrite>) {
        // No subscriber (no mesh, as in tests) is no error.
        let _ = self.changes.send(Changed {
            change_set: Arc::new(change_set.clone()),
            local,
            replaced: false,
            lost,
        });
    }

    fn announce_replaced(&self, core: &Core<S>) {
        if let Ok(Some(last)) = core.store.change_sets().map(|s| s.last().cloned()) {
            let _ = self.changes.send(Changed {
                change_set: Arc::new(last),
                local: false,
                replaced: true,
                lost: Vec::new(),
            });
        }
    }

    /// Notes that `version` is stored and its run is under way (`None`) or done.
    fn note_run(&self, version: &Version, done: bool) {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        applied.insert(version.clone(), done.then(crate::state::wall_ms));
        while applied.len() > APPLIED_KEPT {
            applied.pop_first();
        }
    }

    /// Where each of `versions` stands on this machine.
    pub fn run_states(&self, versions: &[Version]) -> Result<Vec<RunState>, StoreError> {
        let held: Vec<Version> = self
            .change_sets_of(versions)?
            .into_iter()
            .map(|cs| cs.version)
            .collect();
        let waiting = self.lock_core().recent.rollouts.held_back(&self.machine);
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        Ok(versions
            .iter()
            .map(|v| match applied.get(v) {
                _ if waiting.contains(v) => RunState::Waiting,
                Some(Some(ms)) => RunState::Applied { at_ms: Some(*ms) },
                Some(None) => RunState::Running,
                // Held, and not run since this agent started: it ran at the start.
                None if held.contains(v) => RunState::Applied { at_ms: None },
                None => RunState::Missing,
            })
            .collect())
    }

    /// Since when, and why, the store's writes fail (the machine is Degraded meanwhile);
    /// `None` while they work. Needs no lock.
    pub fn store_failure(&self) -> Option<StoreFailure> {
        self.store_health.failure()
    }

    /// Tries a write that changes nothing ([`Store::probe`]): after a failure, whether
    /// the store is written again.
    pub fn probe_store(&self) -> Result<(), StoreError> {
        self.lock_core().store.probe()
    }

    /// This machine's name.
    pub fn machine(&self) -> &MachineName {
        &self.machine
    }

    /// Runs the pipeline once, as after a commit: at start, this repairs a crash between
    /// a commit and its run.
    pub fn start(&self) -> RunReport {
        self.after_change(self.lock_core(), Members::MayHaveChanged)
    }

    pub(crate) fn lock_core(&self) -> MutexGuard<'_, Core<S>> {
        // A panic while holding the lock cannot leave the store half-written (commits
        // are transactions), so a poisoned lock is still safe to use.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The catalogue the store records, as of the last change.
    pub fn catalogue(&self) -> Catalogue {
        (*self.catalogue.read().unwrap_or_else(|e| e.into_inner()).0).clone()
    }

    /// Every live entry.
    pub fn live(&self) -> Result<Live, StoreError> {
        self.lock_core().live()
    }

    /// The live entries under `prefixes` (see [`Store::live_under`]).
    pub fn live_under(&self, prefixes: &[String]) -> Result<Live, StoreError> {
        self.lock_core().store.live_under(prefixes)
    }

    /// The live entries of `keys` (see [`Store::entries`]).
    pub fn entries(&self, keys: &[Key]) -> Result<Live, StoreError> {
        self.lock_core().store.entries(keys)
    }

    /// The change sets of `versions` that the store holds, in that order.
    pub fn change_sets_of(
        &self,
        versions: &[crate::state::Version],
    ) -> Result<Vec<ChangeSet>, StoreError> {
        self.lock_core().store.change_sets_of(versions)
    }

    /// Every change set, in this store's order.
    pub fn change_sets(&self) -> Result<Vec<ChangeSet>, StoreError> {
        self.lock_core().store.change_sets()
    }

    /// The post-commit pipeline: reread the store, refresh users and catalogue, then run
    /// the machine's effective config through the applier (see the module header for the
    /// locks). The memberships (the logins' keys, a rename of this machine) are read
    /// again only when `members` says they may have changed: every member runs this
    /// for every change set, and a cluster's memberships are most of its store.
    fn after_change(&self, mut core: MutexGuard<'_, Core<S>>, members: Members) -> RunReport {
        let machines = (members == Members::MayHaveChanged).then(|| machines_of(&core));
        // Renamed: its config runs under the new name from now on, so nothing it runs
        // changes; the agent takes the name for good as it restarts.
        let renamed = match (&machines, &self.host_key) {
            (Some(Ok(machines)), Some(key)) => {
                super::rename::renamed_to(machines, &core.machine, key)
            }
            _ => None,
        };
        if let Some(new) = &renamed {
            tracing::warn!(was = %core.machine, now = %new, "this machine was renamed");
            core.machine = new.clone();
        }
        let live = match core.machine_view() {
            Ok(live) => live,
            Err(e) => {
                tracing::error!("cannot read the store after a change: {e}");
                return RunReport::default();
            }
        };
        self.refresh_users(&live);
        if let Some(hook) = &self.on_change {
            hook(
                match live.get(&Key::Cluster).and_then(|e| e.value.as_ref()) {
                    Some(EntryValue::Cluster { name }) => Some(name),
                    _ => None,
                },
            );
        }
        match &machines {
            Some(Ok(machines)) => self.refresh_machines(machines, &core.machine),
            Some(Err(e)) => tracing::error!("cannot read the membership after a change: {e}"),
            None => {}
        }
        let catalogue = self.refresh_catalogue(&live);
        let _run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        let me = core.machine.clone();
        let live = self.held_back(&core, live, &me);
        drop(core);
        let (config, undecrypted) = super::applier::running_config_checked(&live, &me, &catalogue);
        let mut report = self.applier.apply(&me, &config);
        if !undecrypted.is_empty() {
            // Reported as a failed step of the run, as a failing hook is: apply fails
            // with it and status shows it.
            report.hooks.insert(
                0,
                crate::protocol::HookRun {
                    command: "decrypt secrets".into(),
                    ok: false,
                    status: format!(
                        "{} not decrypted (left encrypted in the running config)",
                        crate::text::count(undecrypted.len(), "secret")
                    ),
                    output: undecrypted.join("; "),
                },
            );
        }
        *self.last_run.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((crate::state::wall_ms(), report.clone()));
        if let (Some(new), Some(hook)) = (&renamed, &self.on_rename) {
            hook(new);
        }
        report
    }

    /// The last run of the running config and its hooks: when it ended and what it did.
    pub fn last_run(&self) -> Option<(u64, RunReport)> {
        self.last_run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The running-config sections that differ from what this machine's effective config
    /// says, though no change set changed them: local edits, for `check`.
    pub fn local_edits(&self) -> Result<Vec<LocalEdit>, StoreError> {
        let core = self.lock_core();
        let live = core.machine_view()?;
        let live = self.held_back(&core, live, &self.machine);
        drop(core);
        let config = running_config(&live, &self.machine, &self.catalogue());
        let _run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.applier.local_edits(&config))
    }

    fn refresh_users(&self, live: &Live) {
        let Ok(users) = SectionName::new("users") else {
            return;
        };
        let users = match live
            .get(&Key::section(Mode::Cluster, users))
            .and_then(|e| e.value.as_ref())
        {
            Some(EntryValue::Section(node)) => parse_users(node).unwrap_or_else(|e| {
                tracing::error!(
                    "the users section cannot be read, only the local key logs in: {e}"
                );
                Vec::new()
            }),
            _ => Vec::new(),
        };
        self.auth.set_users(users);
    }

    fn refresh_machines(&self, live: &Live, me: &MachineName) {
        // Keys read at the last refresh are taken as they were: a membership change
        // changes one key at most, and every member refreshes at every join.
        let mut read = self.host_keys.lock().unwrap_or_else(|e| e.into_inner());
        let mut now_read = HashMap::new();
        let mut key = |text: &str, m: &MachineName| {
            let parsed = match read.remove(text) {
                Some(k) => Some(k),
                None => russh::keys::PublicKey::from_openssh(text)
                    .map_err(
                        |e| tracing::error!(machine = %m, "a stored host key cannot be read: {e}"),
                    )
                    .ok(),
            };
            if let Some(k) = &parsed {
                now_read.insert(text.to_owned(), k.clone());
            }
            parsed
        };
        let mut keys = super::auth::MachineKeys::default();
        for (k, e) in live {
            match (k, &e.value) {
                (Key::Machine(m), Some(EntryValue::Machine(info))) if m != me => {
                    if let Some(pk) = info.host_key.as_deref().and_then(|t| key(t, m)) {
                        keys.members.push((m.clone(), pk));
                    }
                }
                (Key::Pending(m), Some(EntryValue::Pending(p))) => {
                    if let Some(pk) = key(&p.host_key, m) {
                        keys.pending.push((m.clone(), pk));
                    }
                }
                _ => {}
            }
        }
        *read = now_read;
        self.auth.set_machines(keys);
    }

    fn refresh_catalogue(&self, live: &Live) -> Arc<Catalogue> {
        let from: Vec<Version> = live
            .iter()
            .filter(|(k, _)| matches!(k, Key::Catalogue | Key::Schema(_)))
            .map(|(_, e)| e.stamp.version.clone())
            .collect();
        {
            let held = self.catalogue.read().unwrap_or_else(|e| e.into_inner());
            if held.1.as_ref() == Some(&from) {
                return held.0.clone();
            }
        }
        let mut diags = Diagnostics::default();
        let catalogue = Arc::new(catalogue_of(
            live.iter()
                .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v))),
            &mut diags,
        ));
        for p in diags.problems() {
            tracing::error!("stored schemas: {}", p.message);
        }
        *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) =
            (catalogue.clone(), Some(from));
        catalogue
    }

    /// Runs `op` on the core and, if it committed a change set, the pipeline; answers
    /// what happened. Every writer comes through here.
    pub(crate) fn commit(
        &self,
        op: impl FnOnce(&mut Core<S>) -> Result<Option<ChangeSet>, Refusal>,
    ) -> Response {
        let started = std::time::Instant::now();
        let mut core = self.lock_core();
        match op(&mut core) {
            Ok(None) => Response::Unchanged,
            Ok(Some(cs)) => {
                let committed = started.elapsed();
                self.note_run(&cs.version, false);
                self.announce(&cs, true, Vec::new());
                let running = self.after_change(core, Members::written_by(&cs));
                self.note_failures(&cs.version, &running);
                self.note_run(&cs.version, true);
                tracing::info!(
                    id = %cs.id(),
                    source = %cs.meta.source,
                    author = %cs.meta.author,
                    user = %cs.meta.user,
                    entries = cs.writes.len(),
                    commit_ms = committed.as_millis() as u64,
                    total_ms = started.elapsed().as_millis() as u64,
                    "change set committed"
                );
                Response::Applied {
                    change_set: Box::new(cs.summary()),
                    running,
                }
            }
            Err(Refusal::Commit(CommitError::Stale(conflicts))) => {
                tracing::warn!(conflicts = conflicts.len(), "stale change set refused");
                Response::Stale { conflicts }
            }
            Err(Refusal::Denied(message)) => {
                tracing::warn!("request denied: {message}");
                Response::Denied { message }
            }
            Err(Refusal::Invalid { message, help }) => {
                tracing::warn!("request refused: {message}");
                Response::Error { message, help }
            }
            Err(Refusal::Commit(CommitError::Store(e @ StoreError::Io(_)))) => {
                tracing::error!("commit failed: {e}");
                Response::error(
                    e.to_string(),
                    Some(
                        "nothing was written: this machine cannot write its store (a full or failing disk) and is Degraded until it can; free space and try again",
                    ),
                )
            }
            Err(Refusal::Commit(e)) => {
                tracing::error!("commit failed: {e}");
                Response::error(e.to_string(), Some("nothing was written"))
            }
        }
    }

    /// Runs `op` on the core (a change that is not a commit, such as taking a cluster's
    /// state), then the pipeline.
    pub(crate) fn replace_with(
        &self,
        op: impl FnOnce(&mut Core<S>) -> Result<(), Refusal>,
    ) -> Result<RunReport, Refusal> {
        let mut core = self.lock_core();
        op(&mut core)?;
        self.announce_replaced(&core);
        Ok(self.after_change(core, Members::MayHaveChanged))
    }
}

/// Whether a change may have changed a machine's membership or a pending join — what
/// [`Node::after_change`] reads all of again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Members {
    MayHaveChanged,
    Unchanged,
}

impl Members {
    /// Whether any of `keys` is a machine's membership or a pending join.
    fn of<'a>(mut keys: impl Iterator<Item = &'a Key>) -> Members {
        if keys.any(|k| matches!(k, Key::Machine(_) | Key::Pending(_))) {
            Members::MayHaveChanged
        } else {
            Members::Unchanged
        }
    }

    /// What a change set committed here may have changed.
    fn written_by(cs: &ChangeSet) -> Members {
        Members::of(cs.writes.keys())
    }
}

/// Every member's and pending machine's entry: what the logins are refreshed from.
fn machines_of<S: Store>(core: &Core<S>) -> Result<Live, StoreError> {
    core.store
        .live_under(&["@machine:".into(), "@prepjoin:".into()])
}

#[path = "node_merge.rs"]
mod merge;
#[path = "node_watch.rs"]
mod watch;

#[cfg(test)]
#[path = "node_tests.rs"]
pub(crate) mod tests;
