//! Typed messages between the CLI and an agent. Each request gets exactly one response;
//! the client closes only after reading it, so no message relies on EOF to arrive (russh
//! can drop the last data message before EOF).

use serde::{Deserialize, Serialize};

use crate::plan::Origin;
use crate::state::{Base, ChangeSetSummary, Conflict, Live, Writes};

/// The protocol revision; agents refuse clients of another revision. It follows the
/// encoding of entry values ([`crate::model::ENCODING`]).
pub const PROTOCOL: u32 = crate::model::ENCODING;

/// The SSH subsystem the protocol runs on.
pub const SUBSYSTEM: &str = "strata";

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// First message: the client's protocol revision and Strata version.
    Hello {
        /// [`PROTOCOL`] of the client.
        protocol: u32,
        /// The client's Strata version.
        version: String,
    },
    /// Every live entry (for plan).
    Live,
    /// Commit a plan's writes as one change set, if its base is still current.
    Apply {
        /// Key → new value (`None`: tombstone).
        writes: Writes,
        /// The versions the plan saw.
        base: Base,
        /// The commit (or working tree) the plan came from.
        origin: Origin,
    },
    /// The applied change sets.
    Log,
    /// Apply the state as of change set `to` as a new change set.
    Rollback {
        /// The change set whose state to restore: its id, or a unique prefix of it.
        to: String,
    },
    /// Turn the standalone agent into a one-machine cluster.
    ClusterCreate {
        /// The cluster's name.
        name: String,
    },
}

/// One hook run after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRun {
    /// The command line.
    pub command: String,
    /// Whether it exited 0.
    pub ok: bool,
    /// "exit status 1", "killed by signal 9", "cannot start: …".
    pub status: String,
    /// The tail of its stderr and stdout.
    pub output: String,
}

/// What a commit did to the machine's running config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// The machine.
    pub machine: String,
    /// Sections whose running file was written.
    pub written: Vec<String>,
    /// Sections whose running file was removed.
    pub removed: Vec<String>,
    /// Hooks run, in order.
    pub hooks: Vec<HookRun>,
}

/// What the agent answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "kebab-case")]
pub enum Response {
    /// Answer to Hello: who the agent is and who it thinks you are.
    Hello {
        /// The agent's [`PROTOCOL`].
        protocol: u32,
        /// The agent's Strata version.
        version: String,
        /// The agent's machine name.
        machine: String,
        /// The authenticated user.
        user: String,
        /// That user's role.
        role: String,
    },
    /// Every live entry.
    Live {
        /// The agent's machine name.
        machine: String,
        /// The entries, tombstones included.
        entries: Live,
    },
    /// A change set was committed.
    Applied {
        /// The change set (boxed: it is far larger than the other answers).
        change_set: Box<ChangeSetSummary>,
        /// What it did on this machine.
        running: RunReport,
    },
    /// There was nothing to commit.
    Unchanged,
    /// The applied change sets, oldest first.
    Log {
        /// Summaries.
        change_sets: Vec<ChangeSetSummary>,
    },
    /// The plan's base went stale; nothing was written.
    Stale {
        /// What changed since the plan was computed.
        conflicts: Vec<Conflict>,
    },
    /// The user's role does not allow the request.
    Denied {
        /// Why.
        message: String,
    },
    /// The request failed; nothing was written.
    Error {
        /// What went wrong.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
}

impl Response {
    /// An error response.
    pub fn error(message: impl Into<String>, help: Option<&str>) -> Response {
        Response::Error {
            message: message.into(),
            help: help.map(str::to_owned),
        }
    }
}
