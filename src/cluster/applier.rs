//! Appliers: how a machine runs its effective config once a change set is committed —
//! the config itself ([`running_config`]), and what differs from what runs ([`compare`]).
//! The real applier writes the running-config directory and runs the hooks (the agent's
//! `RunningDir`); the in-memory twin records what it was given ([`MemoryApplier`]), so
//! the post-commit pipeline is tested without files or processes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::protocol::{EditKind, LocalEdit, RunReport};
use crate::resolve::entries::EntryLayers;
use crate::schema::Catalogue;
use crate::state::Live;

/// Runs a machine's effective config: section name → canonical KDL.
pub trait Applier: Send + Sync {
    /// Brings what runs in line with `config` and reports what changed and what ran.
    fn apply(&self, machine: &str, config: &BTreeMap<String, String>) -> RunReport;

    /// The sections whose running form differs from `config` though no change set
    /// changed them: edited, removed or added by hand since the last run (for `check`).
    fn local_edits(&self, config: &BTreeMap<String, String>) -> Vec<LocalEdit>;
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
        compare(config, &current)
    }
}

/// The running config of `machine`, pure: every section of `catalogue` (the one the live
/// entries record), resolved as `strata show` resolves it — defined at a mode, or the
/// factory default — as canonical KDL, with its secrets decrypted with the cluster's
/// identities: here and only here ([`crate::secret`]). A secret no identity of the
/// cluster decrypts stays encrypted (see [`running_config_checked`]).
pub fn running_config(
    live: &Live,
    machine: &str,
    catalogue: &Catalogue,
) -> BTreeMap<String, String> {
    running_config_checked(live, machine, catalogue).0
}

/// [`running_config`], and the secrets it could not decrypt, each named by where it is
/// and why (never by its value); each is logged.
pub fn running_config_checked(
    live: &Live,
    machine: &str,
    catalogue: &Catalogue,
) -> (BTreeMap<String, String>, Vec<String>) {
    let identities = crate::secret::identity::keys(
        crate::secret::identity::all(live)
            .into_iter()
            .map(|(_, i)| i),
    );
    let layers = EntryLayers::new(
        live.iter()
            .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v))),
    );
    let mut out = BTreeMap::new();
    let mut failures = Vec::new();
    for (section, (node, _)) in layers.effective(catalogue, machine) {
        let mut node = node.clone();
        for failed in crate::secret::identity::decrypt_node(&mut node, &identities, machine) {
            tracing::error!(
                "a secret of the running config cannot be decrypted, {failed}; \
                 re-encrypt it to the cluster (`strata secret reencrypt`)"
            );
            failures.push(failed);
        }
        out.insert(section.to_owned(), node.to_canonical());
    }
    // A section no layer sets runs as its schema's default.
    for s in catalogue.sections.values() {
        if !out.contains_key(&s.name) {
            out.insert(s.name.clone(), s.default.to_canonical());
        }
    }
    (out, failures)
}

/// What differs between the running config a machine should have (`config`) and what it
/// has (`found`), section by section.
pub fn compare(
    config: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> Vec<LocalEdit> {
    let mut edits = Vec::new();
    for (section, text) in config {
        match found.get(section) {
            None => edits.push(LocalEdit {
                section: section.clone(),
                kind: EditKind::Removed,
            }),
            Some(t) if t != text => edits.push(LocalEdit {
                section: section.clone(),
                kind: EditKind::Edited,
            }),
            Some(_) => {}
        }
    }
    for section in found.keys().filter(|s| !config.contains_key(*s)) {
        edits.push(LocalEdit {
            section: section.clone(),
            kind: EditKind::Added,
        });
    }
    edits.sort_by(|a, b| a.section.cmp(&b.section));
    edits
}
