//! What a machine's run of its running config reports: the files written and removed,
//! the hooks run ([`RunReport`]), the files edited by hand since ([`LocalEdit`]), and
//! where one change set stands on one machine ([`RunState`]). Plain data, carried in the
//! agent's answers and in `check`'s report.

use serde::{Deserialize, Serialize};

/// One hook run after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// A running-config file that differs from what the agent last wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LocalEdit {
    /// The section (`SECTION.kdl`).
    pub section: String,
    /// What was done to it.
    pub kind: EditKind,
}

/// How a running-config file was changed by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EditKind {
    /// Its content differs.
    Edited,
    /// It is gone.
    Removed,
    /// No section of the config has it.
    Added,
}

/// Where a change set stands on one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum RunState {
    /// The machine does not hold it (yet).
    Missing,
    /// Stored; its running config and hooks are being run now.
    Running,
    /// Stored and run: at `at_ms` (wall ms), or before the agent last started (`None`).
    Applied {
        /// When its run ended, if this agent run saw it.
        at_ms: Option<u64>,
    },
    /// Stored; staged in a rollout whose wave has not reached this machine, which runs
    /// what it ran ([`crate::rollout`]).
    Waiting,
}

impl RunState {
    /// Where it stays until something else happens: applied, or waiting for its wave.
    pub fn settled(self) -> bool {
        matches!(self, RunState::Applied { .. } | RunState::Waiting)
    }
}
