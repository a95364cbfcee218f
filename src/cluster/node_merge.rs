//! Change sets made elsewhere into a node: replication's path into the one pipeline
//! ([`Node::merge`]), and a change set that removes this machine from the cluster, which
//! makes it leave with its config kept as standalone settings ([`Node::merge_from_peer`]).

use super::{Members, Node, machines_of};
use crate::cluster::applier::Applier;
use crate::cluster::caller::Refusal;
use crate::model::Key;
use crate::protocol::RunReport;
use crate::state::{ChangeSet, Store};

impl<S: Store, A: Applier> Node<S, A> {
    /// Merges a change set made elsewhere and, if it changed anything, runs the
    /// pipeline — the path replication will take.
    pub fn merge(&self, change_set: ChangeSet, wall_ms: u64) -> Result<RunReport, Refusal> {
        let mut core = self.lock_core();
        let merged = core.merge(change_set.clone(), wall_ms)?;
        if merged.new {
            self.note_run(&change_set.version, false);
            let lost = crate::state::lost_to(&self.machine, &change_set, &merged.replaced);
            self.announce(&change_set, false, lost);
        }
        // What this machine runs reads none of the other machines' memberships
        // (`Core::machine_view`): a change set that wrote only those (a join elsewhere),
        // or nothing, runs nothing — but a wave released or a rollout halted writes
        // nothing and still changes what runs. The logins read every membership.
        let runs = change_set.meta.rollout.is_some()
            || merged.changed.iter().any(|k| match k {
                Key::Machine(m) | Key::Pending(m) => *m == core.machine,
                _ => true,
            });
        let report = if runs {
            self.after_change(core, Members::of(merged.changed.iter()))
        } else {
            if !merged.changed.is_empty() {
                match machines_of(&core) {
                    Ok(machines) => self.refresh_machines(&machines, &core.machine),
                    Err(e) => tracing::error!("cannot read the membership after a change: {e}"),
                }
            }
            drop(core);
            RunReport::default()
        };
        if merged.new {
            self.note_failures(&change_set.version, &report);
            self.note_run(&change_set.version, true);
        }
        Ok(report)
    }

    /// Merges a change set from a peer, as [`Node::merge`] does — unless it removes this
    /// machine from the cluster: then the machine leaves, keeping its effective config as
    /// it was before as standalone settings (see [`crate::cluster::membership`]).
    pub fn merge_from_peer(
        &self,
        change_set: ChangeSet,
        wall_ms: u64,
    ) -> Result<RunReport, Refusal> {
        let me = Key::Machine(self.machine.clone());
        let renamed = self
            .host_key
            .as_ref()
            .and_then(|k| crate::cluster::rename::renames(&change_set, &self.machine, k));
        if change_set.writes.get(&me) == Some(&None) && renamed.is_none() {
            let mut core = self.lock_core();
            let live = core.live()?;
            let wins = live
                .get(&me)
                .is_some_and(|e| e.value.is_some() && e.stamp.version < change_set.version);
            if wins {
                let flat =
                    crate::cluster::membership::flattened(&live, &self.machine, &self.catalogue());
                tracing::warn!(
                    by = %change_set.meta.host,
                    change_set = %change_set.id(),
                    "this machine was removed from the cluster; it keeps its config as standalone settings"
                );
                core.leave(flat, wall_ms)?;
                self.announce_replaced(&core);
                return Ok(self.after_change(core, Members::MayHaveChanged));
            }
        }
        self.merge(change_set, wall_ms)
    }
}
