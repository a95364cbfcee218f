//! The agent: the daemon on each appliance. It owns a state dir ([`state_dir`]), serves
//! operators over SSH ([`server`]), and keeps a [`node::Node`]: the store and clock
//! ([`core`]; administering the cluster in [`admin`]), logins ([`auth`]), the request
//! handlers ([`requests`]) and the one
//! post-commit pipeline that runs the result through an [`applier`] — the running-config
//! files and hooks ([`running`]) in production, an in-memory twin in tests.
//!
//! Concurrency: requests arrive on async SSH tasks and do blocking work on blocking
//! threads; the node's two locks and their order are described in [`node`].

pub mod admin;
pub mod applier;
pub mod auth;
pub mod check;
pub mod core;
pub mod follow;
pub mod git_pack;
pub mod git_serve;
pub mod membership;
pub mod memory;
pub mod mesh;
pub mod node;
pub mod penalties;
pub mod requests;
pub mod running;
pub mod server;
pub mod settings;
pub mod state_dir;
pub mod users;

use std::path::Path;
use std::sync::Arc;

use self::applier::RunningDir;
use self::auth::Auth;
use self::core::Core;
use self::node::Node;
use self::state_dir::StateDir;
use crate::mesh::{Request, Response};
use crate::model::MachineName;
use crate::state::{DiskStore, wall_ms};

pub use auth::Authed;
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
        let auth = Auth::new(state.local_key.clone(), state.settings.auth_delay_ms);
        let applier = RunningDir {
            dir: state.running_dir(),
            hooks: state.settings.hooks.clone(),
        };
        let node = Node::new(core, auth, applier);
        let report = node.start();
        if !report.written.is_empty() || !report.removed.is_empty() {
            tracing::info!(written = ?report.written, removed = ?report.removed, "running config brought up to date");
        }
        let follower = state.settings.follow.clone().map(|f| {
            Arc::new(follow::Follower::new(
                f,
                state.layout.dir.join("follow.git"),
            ))
        });
        Ok(Arc::new(Agent {
            state,
            node,
            mesh: std::sync::OnceLock::new(),
            follower,
            git: Default::default(),
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
            Request::Rollback { .. } => {
                if let Some(refusal) = self.rollback_refusal() {
                    return refusal;
                }
            }
            _ => {}
        }
        match mesh::handle(self, who, &request) {
            Some(answer) => answer,
            None => self.node.handle(who, request),
        }
    }
}

impl Agent {
    /// Why a rollback is refused while the cluster follows a branch in mode apply —
    /// the next sync would undo it silently: when this agent follows one itself (its own
    /// `agent.kdl`), or when the change log says a follower applied the commit the
    /// cluster runs (the newest change set stamped with a commit is a follower's), which
    /// every member knows.
    fn rollback_refusal(&self) -> Option<Response> {
        let help = "pin a commit (`source … branch=\"COMMIT\"` in the follower's agent.kdl) or \
                    revert the change in git and let the follower apply it";
        if let Some(f) = &self.follower
            && f.settings.mode == settings::FollowMode::Apply
        {
            return Some(Response::error(
                format!(
                    "this machine follows {} of {} in mode apply: a rollback would be undone by the next sync",
                    f.settings.branch, f.settings.url
                ),
                Some(help),
            ));
        }
        let sets = self.node.change_sets().ok()?;
        let last = follow::followed_by_log(&sets)?;
        Some(Response::error(
            format!(
                "the cluster follows a branch: its current commit was applied by the follower on {} (change set {}), and a rollback would be undone by the next sync",
                last.meta.host,
                last.id()
            ),
            Some(&format!(
                "{help}; if no machine follows the repo any more, `strata apply --ref COMMIT` the state you want"
            )),
        ))
    }
}

/// In-process peers ([`crate::mesh::MemoryPeer`]) are answered as SSH clients are.
impl crate::mesh::Service for Agent {
    type Caller = Authed;

    fn call(&self, who: &Authed, request: Request) -> Response {
        self.handle(who, request)
    }
}
