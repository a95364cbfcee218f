//! The agent: the daemon on each appliance. It owns a state dir (see [`state_dir`]),
//! serves operators over SSH ([`server`]), commits change sets to its durable store
//! through [`core::Core`], and runs the result ([`running`]).
//!
//! Concurrency: requests arrive on async SSH tasks and do blocking work on blocking
//! threads. Two locks, always taken in this order: the store lock (commits, reads for
//! plan and log) and the run lock (running dir and hooks). A commit takes the run lock
//! before it lets go of the store lock, then writes the running config and runs hooks
//! holding only the run lock: results run one change set at a time, in commit order,
//! while a slow hook holds up no plan or log, only the next change set's run.

pub mod core;
pub mod penalties;
pub mod running;
pub mod server;
pub mod settings;
pub mod state_dir;
pub mod users;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use russh::keys::PublicKey;

use self::core::{Caller, Core, Refusal};
use self::penalties::Penalties;
use self::state_dir::StateDir;
use self::users::{Role, User, parse_users, verify_passphrase};
use crate::config::Diagnostics;
use crate::mesh::{PROTOCOL, Request, Response, RunReport};
use crate::model::{EntryValue, MachineName, Mode, SectionName};
use crate::resolve::entries::catalogue_of;
use crate::schema::Catalogue;
use crate::state::{ChangeSet, CommitError, DiskStore, Key, Live, Store, wall_ms};

pub use penalties::refusal_delay;
pub use server::run;

/// The agent could not start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AgentError {
    /// The state dir is unusable or held by another agent.
    #[error(transparent)]
    #[diagnostic(transparent)]
    StateDir(#[from] state_dir::StateDirError),
    /// The store could not be opened.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::state::StoreError),
    /// Standalone settings could not be recorded.
    #[error("cannot record the standalone settings: {0}")]
    #[diagnostic(code(strata::agent::bootstrap))]
    Bootstrap(String),
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The SSH user name.
    pub user: String,
    /// What they may do.
    pub role: Role,
}

/// The running agent's shared state.
pub struct Agent {
    /// The state dir (settings, keys, lock).
    pub state: StateDir,
    core: Mutex<Core<DiskStore>>,
    /// Held while the running config is written and hooks run (see the module header).
    run: Mutex<()>,
    /// The catalogue the store records (built-in selection and the repo's own schemas),
    /// rebuilt after every change.
    catalogue: RwLock<Catalogue>,
    users: RwLock<Vec<User>>,
    penalties: Mutex<Penalties>,
}

impl Agent {
    /// Opens (or creates) the state dir, the store, records standalone settings on first
    /// start, and brings the running config up to date (a crash between a commit and
    /// its running update is repaired here).
    pub fn open(
        dir: &Path,
        machine: Option<&str>,
        listen: Option<&str>,
    ) -> Result<Arc<Agent>, AgentError> {
        let state = StateDir::open(dir, machine, listen)?;
        let store = DiskStore::open(&state.layout.store())?;
        let address = state
            .settings
            .address
            .clone()
            .unwrap_or_else(|| state.settings.machine.clone());
        let machine = MachineName::new(&state.settings.machine)
            .map_err(|e| AgentError::Bootstrap(e.to_string()))?;
        let mut core = Core::new(store, machine, address)?;
        core.bootstrap(&state.settings.standalone, wall_ms())
            .map_err(|e| AgentError::Bootstrap(e.to_string()))?;
        let agent = Arc::new(Agent {
            state,
            core: Mutex::new(core),
            run: Mutex::new(()),
            catalogue: RwLock::new(Catalogue::builtin()),
            users: RwLock::new(Vec::new()),
            penalties: Mutex::new(Penalties::default()),
        });
        {
            let report = agent.after_change(agent.lock_core());
            if !report.written.is_empty() || !report.removed.is_empty() {
                tracing::info!(written = ?report.written, removed = ?report.removed, "running config brought up to date");
            }
        }
        Ok(agent)
    }

    fn lock_core(&self) -> MutexGuard<'_, Core<DiskStore>> {
        // A panic while holding the lock cannot leave the store half-written (commits
        // are transactions), so a poisoned lock is still safe to use.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rereads the user database (the cluster's `users` section) and runs the result,
    /// after a commit or at start; both from one read of the store. Releases the store
    /// lock once it holds the run lock, so hooks run without blocking other requests.
    fn after_change(&self, core: MutexGuard<'_, Core<DiskStore>>) -> RunReport {
        match core.live() {
            Ok(live) => {
                self.refresh_users(&live);
                self.refresh_catalogue(&live);
                let _run = self.run.lock().unwrap_or_else(|e| e.into_inner());
                drop(core);
                self.run_result(&live)
            }
            Err(e) => {
                tracing::error!("cannot read the store after a change: {e}");
                RunReport::default()
            }
        }
    }

    fn refresh_users(&self, live: &Live) {
        let key = Key::section(
            Mode::Cluster,
            SectionName::new("users").expect("a valid name"),
        );
        let users = match live.get(&key).and_then(|e| e.value.as_ref()) {
            Some(EntryValue::Section(node)) => parse_users(node).unwrap_or_else(|e| {
                tracing::error!(
                    "the users section cannot be read, only the local key logs in: {e}"
                );
                Vec::new()
            }),
            _ => Vec::new(),
        };
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = users;
    }

    fn refresh_catalogue(&self, live: &Live) {
        let mut diags = Diagnostics::default();
        let catalogue = catalogue_of(
            live.iter()
                .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v))),
            &mut diags,
        );
        for p in &diags.problems {
            tracing::error!("stored schemas: {}", p.message);
        }
        *self.catalogue.write().unwrap_or_else(|e| e.into_inner()) = catalogue;
    }

    fn run_result(&self, live: &Live) -> RunReport {
        let machine = &self.state.settings.machine;
        let catalogue = self.catalogue.read().unwrap_or_else(|e| e.into_inner());
        let config = running::running_config(live, machine, &catalogue);
        drop(catalogue);
        match running::update(
            &self.state.running_dir(),
            machine,
            &config,
            &self.state.settings.hooks,
        ) {
            Ok(report) => {
                for h in report.hooks.iter().filter(|h| !h.ok) {
                    tracing::error!(hook = %h.command, status = %h.status, output = %h.output, "hook failed");
                }
                report
            }
            Err(e) => {
                tracing::error!("cannot write the running config: {e}");
                RunReport {
                    machine: machine.clone(),
                    hooks: vec![crate::mesh::HookRun {
                        command: "write running config".into(),
                        ok: false,
                        status: e.to_string(),
                        output: String::new(),
                    }],
                    ..RunReport::default()
                }
            }
        }
    }

    /// The role of `user` logging in with `key`, if the key is theirs (or the state dir's
    /// local administrator key, whoever the user name).
    pub fn authorize_key(&self, user: &str, key: &PublicKey) -> Option<Role> {
        if key.key_data() == self.state.local_key.key_data() {
            return Some(Role::Administrator);
        }
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .iter()
            .find(|u| u.name == user && !u.locked)
            .filter(|u| u.keys.iter().any(|k| k.key_data() == key.key_data()))
            .map(|u| u.role)
    }

    /// The role of `user` if `passphrase` matches their argon2id hash.
    pub fn authorize_passphrase(&self, user: &str, passphrase: &str) -> Option<Role> {
        let found = {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            users
                .iter()
                .find(|u| u.name == user && !u.locked)
                .and_then(|u| u.passphrase_hash.clone().map(|h| (h, u.role)))
        };
        let (hash, role) = found?;
        verify_passphrase(passphrase, &hash).then_some(role)
    }

    /// Records a refused login from `ip` and returns how long to hold the answer: the
    /// base delay, doubled for each refusal in a row from that address, at most 30 s
    /// (see [`penalties`] for how long an address is remembered).
    pub fn refused(&self, ip: Option<IpAddr>) -> Duration {
        let base = self.state.settings.auth_delay_ms;
        let Some(ip) = ip else {
            return Duration::from_millis(base);
        };
        let n = self
            .penalties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refuse(ip, std::time::Instant::now());
        refusal_delay(base, n)
    }

    /// Forgets refusals from `ip` after a successful login.
    pub fn accepted(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.penalties
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(ip);
        }
    }

    /// Answers one request. Blocking: call it on a blocking thread.
    pub fn handle(&self, who: &Authed, request: Request) -> Response {
        let caller = Caller {
            user: who.user.clone(),
        };
        let machine = self.state.settings.machine.clone();
        let deny = |what: &str| Response::Denied {
            message: format!("user `{}` ({}) may not {what}", who.user, who.role.as_str()),
        };
        match request {
            Request::Hello { protocol, .. } if protocol != PROTOCOL => Response::error(
                format!("this agent speaks protocol {PROTOCOL}, the client {protocol}"),
                Some("use the same Strata version on both ends"),
            ),
            Request::Hello { .. } => Response::Hello {
                protocol: PROTOCOL,
                version: env!("CARGO_PKG_VERSION").into(),
                machine,
                user: who.user.clone(),
                role: who.role.as_str().into(),
            },
            Request::Live => match self.lock_core().live() {
                Ok(entries) => Response::Live { machine, entries },
                Err(e) => Response::error(e.to_string(), None),
            },
            Request::Log => match self.lock_core().store.change_sets() {
                Ok(sets) => Response::Log {
                    change_sets: sets.iter().map(ChangeSet::summary).collect(),
                },
                Err(e) => Response::error(e.to_string(), None),
            },
            Request::Apply { .. } | Request::Rollback { .. } if !who.role.may_apply() => {
                deny("apply changes")
            }
            Request::ClusterCreate { .. } if !who.role.may_administer() => deny("create a cluster"),
            Request::Apply {
                writes,
                base,
                origin,
            } => self.commit(|core| core.apply(&caller, writes, base, &origin, wall_ms())),
            Request::Rollback { to } => self.commit(|core| core.rollback(&caller, &to, wall_ms())),
            Request::ClusterCreate { name } => {
                let catalogue = self
                    .catalogue
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                self.commit(|core| {
                    core.create_cluster(&caller, &name, &catalogue, wall_ms())
                        .map(Some)
                })
            }
        }
    }

    fn commit(
        &self,
        op: impl FnOnce(&mut Core<DiskStore>) -> Result<Option<ChangeSet>, Refusal>,
    ) -> Response {
        let started = std::time::Instant::now();
        let mut core = self.lock_core();
        match op(&mut core) {
            Ok(None) => Response::Unchanged,
            Ok(Some(cs)) => {
                let committed = started.elapsed();
                let running = self.after_change(core);
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
            Err(Refusal::Invalid { message, help }) => {
                tracing::warn!("request refused: {message}");
                Response::Error { message, help }
            }
            Err(Refusal::Commit(e)) => {
                tracing::error!("commit failed: {e}");
                Response::error(e.to_string(), Some("nothing was written"))
            }
        }
    }
}

/// In-process peers ([`crate::mesh::MemoryPeer`]) are answered as SSH clients are.
impl crate::mesh::Service for Agent {
    type Caller = Authed;

    fn call(&self, who: &Authed, request: Request) -> Response {
        self.handle(who, request)
    }
}
