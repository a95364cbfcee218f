//! What a node watches besides its store: the trials (commit confirmed) it reverts when
//! their time runs out ([`crate::cluster::trial`]), the staged rollouts ([`crate::rollout`])
//! whose waves decide what it runs, and the hooks that failed in each run, for a
//! rollout's gate.

use super::{APPLIED_KEPT, Core, Node};
use crate::cluster::applier::Applier;
use crate::model::MachineName;
use crate::protocol::{Response, RunReport};
use crate::state::{Live, Store, Version};

impl<S: Store, A: Applier> Node<S, A> {
    /// Reverts each trial (commit confirmed) whose time ran out unconfirmed at least
    /// `stagger_ms` before `now_ms`; returns what each revert answered.
    pub fn revert_expired(&self, now_ms: u64, stagger_ms: u64) -> Vec<Response> {
        let expired = self
            .lock_core()
            .recent
            .trials
            .expired(now_ms.saturating_sub(stagger_ms));
        expired
            .into_iter()
            .map(|version| {
                let answer = self.commit(|core| core.revert_trial(&version, now_ms));
                match &answer {
                    // Settled: reverted now, or confirmed or reverted meanwhile.
                    Response::Applied { .. } | Response::Unchanged => {
                        if matches!(answer, Response::Applied { .. }) {
                            tracing::warn!(trial = %crate::model::ChangeSetId::of(&version), "not confirmed in time: reverted (commit confirmed)");
                        }
                        self.lock_core().recent.trials.forget(&version);
                    }
                    // Tried again at the next tick.
                    other => tracing::error!(trial = %version, "cannot revert the unconfirmed change set: {other:?}"),
                }
                answer
            })
            .collect()
    }

    /// The trials (commit confirmed) pending here: version and deadline (wall ms).
    pub fn pending_trials(&self) -> Vec<(Version, u64)> {
        self.lock_core()
            .recent
            .trials
            .pending()
            .map(|(v, by)| (v.clone(), by))
            .collect()
    }

    /// `view` as machine `me` runs it: without the writes of staged change sets whose
    /// wave has not reached it ([`crate::rollout`]).
    pub(super) fn held_back(&self, core: &Core<S>, mut view: Live, me: &MachineName) -> Live {
        let held = core.recent.rollouts.held_back(me);
        if held.is_empty() {
            return view;
        }
        let staged = core.store.change_sets_of(&held);
        let earlier = staged
            .as_ref()
            .ok()
            .map(|s| core.store.change_sets_of(&crate::rollout::replaced_by(s)));
        match (staged, earlier) {
            (Ok(staged), Some(Ok(earlier))) => {
                crate::rollout::hold_back(&mut view, &staged, &earlier);
            }
            _ => tracing::error!("cannot read the staged change sets this machine waits for"),
        }
        view
    }

    /// The newest change set stamped with a commit: its version and meta.
    pub fn last_applied(&self) -> Option<(Version, crate::model::ChangeMeta)> {
        self.lock_core().recent.last_applied.clone()
    }

    /// The staged rollouts still moving that machine `origin` took (and drives).
    pub fn rollouts_driven_by(&self, origin: &MachineName) -> Vec<crate::rollout::Progress> {
        self.lock_core()
            .recent
            .rollouts
            .all()
            .filter(|p| p.moving() && p.version.origin == *origin)
            .cloned()
            .collect()
    }

    /// The staged rollouts this machine knows and how far each got.
    pub fn rollouts(&self) -> Vec<crate::rollout::Progress> {
        self.lock_core().recent.rollouts.all().cloned().collect()
    }

    /// The hooks that failed when each of `versions` ran here (none: clean, or not run
    /// since the agent started).
    pub fn failed_hooks(&self, versions: &[Version]) -> Vec<Vec<String>> {
        let failed = self.failed_runs.lock().unwrap_or_else(|e| e.into_inner());
        versions
            .iter()
            .map(|v| failed.get(v).cloned().unwrap_or_default())
            .collect()
    }

    /// Notes the hooks that failed when `version` ran.
    pub(super) fn note_failures(&self, version: &Version, report: &RunReport) {
        let failed: Vec<String> = report
            .hooks
            .iter()
            .filter(|h| !h.ok)
            .map(|h| h.command.clone())
            .collect();
        if failed.is_empty() {
            return;
        }
        let mut runs = self.failed_runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.insert(version.clone(), failed);
        while runs.len() > APPLIED_KEPT {
            runs.pop_first();
        }
    }
}
