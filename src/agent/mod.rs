//! The agent: the daemon on each appliance, around one [`crate::cluster`] node. It owns
//! a state dir ([`state_dir`], its settings in `agent.kdl`:
//! [`crate::config::agent_kdl`], and the
//! membership record that outlives a lost store, [`member_record`]), serves operators
//! and peers over SSH ([`server`]), runs the peer [`mesh`] (links, routes, sync, joins,
//! clustercheck), serves the config repo over git ([`git_serve`]), follows a repo
//! ([`follow`]), and runs each result: the running-config files and hooks ([`running`]),
//! then gives freed memory back ([`memory`]). Under systemd it says when it is ready
//! and healthy ([`systemd`]). Renamed, it restarts under its new name ([`rename`]).
//!
//! Concurrency: requests arrive on async SSH tasks and do blocking work on blocking
//! threads; the node's two locks and their order are described in
//! [`crate::cluster::node`].

pub mod follow;
pub mod git_serve;
pub mod member_record;
pub mod memory;
pub mod mesh;
pub mod metrics;
pub mod notify;
pub mod rename;
pub mod repair;
pub mod running;
pub mod server;
pub mod state_dir;
#[cfg(unix)]
pub mod systemd;

use std::path::Path;
use std::sync::Arc;

use self::running::RunningDir;
use self::state_dir::StateDir;
use crate::cluster::Authed;
use crate::cluster::auth::Auth;
use crate::cluster::core::Core;
use crate::cluster::node::Node;
use crate::cluster::requests;
use crate::model::MachineName;
use crate::protocol::{Request, Response};
use crate::state::{DiskStore, Store, wall_ms};

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
    /// The store is empty, but the membership record says this machine is a member.
    #[error(
        "{store} is empty, but {record} says this machine is a member of {cluster}: starting would make it a new standalone machine and reset its running config to factory defaults"
    )]
    #[diagnostic(
        code(strata::agent::store_lost),
        help(
            "rebuild it from a member, with the agent stopped: `strata cluster repair MEMBER --fingerprint SHA256:… --state-dir DIR`; \
             or restore {store} from a backup; or, to start this machine afresh on purpose, remove {record}, start the agent and join the cluster again"
        )
    )]
    StoreLost {
        /// The store file.
        store: String,
        /// The membership record.
        record: String,
        /// The cluster it names (`cluster "NAME"`), or why it names none.
        cluster: String,
    },
    /// Standalone settings could not be recorded.
    #[error("cannot record the standalone settings: {0}")]
    #[diagnostic(code(strata::agent::bootstrap))]
    Bootstrap(String),
}

/// The running agent: its state dir and its node (disk store, running-config directory).
pub struct Agent {
    /// The state dir (settings, keys, lock).
    pub state: StateDir,
    /// The store, logins, pipeline and handlers.
    pub node: Node<DiskStore, RunningDir>,
    /// The peer mesh, once the SSH server runs.
    pub mesh: std::sync::OnceLock<mesh::Mesh>,
    /// The follower of the repo `agent.kdl`'s `source` names, if it names one.
    pub follower: Option<Arc<follow::Follower>>,
    /// The config repo kept at the commit the cluster runs ([`mesh::git_fetch`]).
    pub git: mesh::git_fetch::GitFetch,
    /// What it counts for Prometheus ([`metrics`]).
    pub metrics: Arc<metrics::Metrics>,
    /// Where alerts go ([`notify`]), once the agent runs.
    pub notifier: Arc<std::sync::OnceLock<notify::Notifier>>,
    /// Asked when a change renamed this machine: the agent restarts under the new name.
    pub restart: Arc<rename::Restart>,
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
        let mut state = StateDir::open(dir, machine, listen)?;
        let store = DiskStore::open(&state.layout.store())?;
        rename::take_new_name(&mut state, &store)?;
        let record = member_record::MemberRecord::new(state.layout.member());
        if store.change_sets()?.is_empty()
            && let Some(recorded) = record.read()?
        {
            return Err(AgentError::StoreLost {
                store: state.layout.store().display().to_string(),
                record: record.path().display().to_string(),
                cluster: match recorded {
                    member_record::Recorded::Member(name) => format!("cluster \"{name}\""),
                    member_record::Recorded::Unreadable(why) => {
                        format!("a cluster (which one it does not say: {why})")
                    }
                },
            });
        }
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
        let auth = Auth::new(state.local_key.clone(), state.settings.auth_delay_ms);
        let metrics = Arc::new(metrics::Metrics::default());
        let notifier = Arc::new(std::sync::OnceLock::new());
        let applier = RunningDir {
            dir: state.running_dir(),
            hooks: state.settings.hooks.clone(),
            metrics: metrics.clone(),
            alerts: notifier.clone(),
        };
        applier.remove_interrupted_writes();
        // A commit is verified only if this machine's config repo holds it (a push).
        let config_repo = state.layout.dir.join(git_serve::REPO_DIR);
        let restart = Arc::new(rename::Restart::default());
        let asked = restart.clone();
        let node = Node::new(core, auth, applier)
            .with_rename_hook(
                state.host_key.public_key().clone(),
                Box::new(move |_| asked.ask()),
            )
            .with_change_hook(Box::new(move |cluster| {
                if let Err(e) = record.note(cluster) {
                    tracing::error!("cannot update the membership record: {e}");
                }
                memory::release_soon();
            }))
            .with_commit_check(Box::new(move |origin| {
                crate::source::holds(&config_repo, origin)
            }));
        let report = node.start();
        if !report.written.is_empty() || !report.removed.is_empty() {
            tracing::info!(written = ?report.written, removed = ?report.removed, "running config brought up to date");
        }
        let follower = state.settings.follow.clone().map(|f| {
            let (alerts, me) = (notifier.clone(), state.settings.machine.clone());
            Arc::new(
                follow::Follower::new(f, state.layout.dir.join("follow.git")).with_alerts(
                    Box::new(move |kind, severity, summary| {
                        if let Some(n) = alerts.get() {
                            n.send(notify::Event {
                                kind,
                                class: "clustering",
                                severity,
                                machine: me.clone(),
                                reported_by: me.clone(),
                                at_ms: crate::state::wall_ms(),
                                summary,
                            });
                        }
                    }),
                ),
            )
        });
        Ok(Arc::new(Agent {
            state,
            node,
            mesh: std::sync::OnceLock::new(),
            follower,
            git: Default::default(),
            metrics,
            notifier,
            restart,
        }))
    }

    /// Answers one request. Blocking: call it on a blocking thread.
    pub fn handle(&self, who: &Authed, request: Request) -> Response {
        match request {
            Request::Status => {
                return match follow::status(&self.node, self.follower.as_deref()) {
                    Ok(mut s) => {
                        let last = s.last_applied.as_ref().map(|a| a.commit.commit.as_str());
                        s.served = Some(self.git.served(&git_serve::path(self), last));
                        Response::Status(Box::new(s))
                    }
                    Err(e) => Response::error(e, None),
                };
            }
            // A rollback is refused before it is shown, too: the question would be for
            // nothing (the rollback itself is refused by the core's guard).
            Request::RollbackPlan { .. } => {
                if let Some(f) = self.followed() {
                    return Response::error(
                        format!("{}: a rollback would be undone by the next sync", f.by),
                        Some(crate::cluster::guard::HINT),
                    );
                }
            }
            _ => {}
        }
        match mesh::handle(self, who, &request) {
            Some(answer) => answer,
            None if request.writes() => {
                let started = std::time::Instant::now();
                let answer = requests::handle(&self.node, who, request, self.followed());
                if matches!(answer, Response::Error { .. }) {
                    self.metrics.refused("client");
                } else {
                    self.metrics
                        .apply_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                answer
            }
            None => requests::handle(&self.node, who, request, None),
        }
    }

    /// The branch a follower in mode apply keeps the cluster at, if one does: when this
    /// agent follows one itself (its own `agent.kdl`), or when the change log says a
    /// follower applied the commit the cluster runs (the newest change set stamped with a
    /// commit is a follower's), which every member knows.
    pub fn followed(&self) -> Option<crate::cluster::caller::Followed> {
        // Kept by the core as change sets come in: no write reads the whole history.
        let last = self
            .node
            .last_applied()
            .filter(|(_, meta)| meta.origin_kind == crate::model::OriginKind::Follower);
        let commit = last.as_ref().and_then(|(_, meta)| match &meta.source {
            crate::model::Source::Git { commit } => Some(commit.clone()),
            crate::model::Source::Cli => None,
        });
        if let Some(f) = &self.follower
            && f.settings.mode == crate::config::agent_kdl::FollowMode::Apply
        {
            return Some(crate::cluster::caller::Followed {
                by: format!(
                    "this machine follows {} of {} in mode apply",
                    f.settings.branch, f.settings.url
                ),
                commit,
            });
        }
        let (version, meta) = last?;
        Some(crate::cluster::caller::Followed {
            by: format!(
                "the cluster follows a branch (its current commit was applied by the follower on {}, change set {})",
                meta.host,
                crate::model::ChangeSetId::of(&version)
            ),
            commit,
        })
    }
}

/// In-process peers ([`crate::protocol::MemoryPeer`]) are answered as SSH clients are.
impl crate::protocol::Service for Agent {
    type Caller = Authed;

    fn call(&self, who: &Authed, request: Request) -> Response {
        self.handle(who, request)
    }
}
