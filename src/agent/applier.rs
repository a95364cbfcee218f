//! Appliers: how a machine runs its effective config once a change set is committed. The
//! real one writes the running-config directory and runs the hooks ([`RunningDir`]); the
//! in-memory twin records what it was given ([`MemoryApplier`]), so the post-commit
//! pipeline is tested without files or processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::running;
use crate::mesh::{HookRun, LocalEdit, RunReport};

/// Runs a machine's effective config: section name → canonical KDL.
pub trait Applier: Send + Sync {
    /// Brings what runs in line with `config` and reports what changed and what ran.
    fn apply(&self, machine: &str, config: &BTreeMap<String, String>) -> RunReport;

    /// The sections whose running form differs from `config` though no change set
    /// changed them: edited, removed or added by hand since the last run (for `check`).
    fn local_edits(&self, config: &BTreeMap<String, String>) -> Vec<LocalEdit>;
}

/// The running-config directory (one `SECTION.kdl` per section) and the hooks run after
/// a change.
#[derive(Debug, Clone)]
pub struct RunningDir {
    /// Where the files go.
    pub dir: PathBuf,
    /// Commands run with the changed section names as arguments.
    pub hooks: Vec<Vec<String>>,
}

impl Applier for RunningDir {
    fn apply(&self, machine: &str, config: &BTreeMap<String, String>) -> RunReport {
        match running::update(&self.dir, machine, config, &self.hooks) {
            Ok(report) => {
                for h in report.hooks.iter().filter(|h| !h.ok) {
                    tracing::error!(hook = %h.command, status = %h.status, output = %h.output, "hook failed");
                }
                report
            }
            Err(e) => {
                tracing::error!("cannot write the running config: {e}");
                RunReport {
                    machine: machine.to_owned(),
                    hooks: vec![HookRun {
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

    fn local_edits(&self, config: &BTreeMap<String, String>) -> Vec<LocalEdit> {
        running::local_edits(&self.dir, config)
    }
}

/// The in-memory twin: keeps the last config it was given and every report.
#[derive(Debug, Default)]
pub struct MemoryApplier {
    /// The config now "running".
    pub current: Mutex<BTreeMap<String, String>>,
    /// How many times something changed.
    pub runs: Mutex<usize>,
}

impl Applier for MemoryApplier {
    fn apply(&self, machine: &str, config: &BTreeMap<String, String>) -> RunReport {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let written: Vec<String> = config
            .iter()
            .filter(|(s, text)| current.get(*s) != Some(*text))
            .map(|(s, _)| s.clone())
            .collect();
        let removed: Vec<String> = current
            .keys()
            .filter(|s| !config.contains_key(*s))
            .cloned()
            .collect();
        if !written.is_empty() || !removed.is_empty() {
            *self.runs.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        *current = config.clone();
        RunReport {
            machine: machine.to_owned(),
            written,
            removed,
            hooks: Vec::new(),
        }
    }

    fn local_edits(&self, config: &BTreeMap<String, String>) -> Vec<LocalEdit> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        running::compare(config, &current)
    }
}
