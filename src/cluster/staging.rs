//! Staged rollouts on the core ([`crate::rollout`]): an apply to a cluster that declares
//! waves is staged in them (resolved over the members as they are), while another still
//! moves the apply is refused; the machine that took it releases each wave, or halts it,
//! with a change set that writes nothing.

use super::caller::{Caller, Refusal, invalid};
use super::core::Core;
use super::membership::{agent_caller, members};
use crate::model::{EntryValue, Key, Mode, Rollout, SectionName, Source};
use crate::rollout::Progress;
use crate::state::{ChangeSet, Store, Version, Writes};

impl<S: Store> Core<S> {
    /// What an apply of `writes` is to the cluster's rollout: staged in its waves, or
    /// `None` (no `rollout` section, or nothing to stage). Refused while another staged
    /// change set is still moving.
    pub(super) fn staging(&self, writes: &Writes) -> Result<Option<Rollout>, Refusal> {
        let key = Key::section(
            Mode::Cluster,
            SectionName::new(crate::rollout::SECTION).expect("a valid section name"),
        );
        let live = self.store.entries(std::slice::from_ref(&key))?;
        let Some(EntryValue::Section(section)) = live.get(&key).and_then(|e| e.value.as_ref())
        else {
            return Ok(None);
        };
        if writes.is_empty() {
            return Ok(None);
        }
        if let Some(p) = self.recent.rollouts.all().find(|p| p.moving()) {
            return Err(invalid(
                format!(
                    "change set {} is still rolling out: {}",
                    crate::model::ChangeSetId::of(&p.version),
                    p.describe()
                ),
                Some(
                    "wait until its last wave runs it (`strata status` shows where it is), then apply again",
                ),
            ));
        }
        let spec = crate::rollout::spec(section).map_err(|e| invalid(e, None))?;
        let machines = self.store.live_under(&["@machine:".into()])?;
        let members: Vec<_> = members(&machines)
            .map(|(m, info)| (m.clone(), info.group.clone()))
            .collect();
        let waves = crate::rollout::resolve(&spec, &members);
        if waves.len() < 2 {
            return Ok(None);
        }
        Ok(Some(Rollout::Staged {
            waves,
            pause_ms: spec.pause_ms,
            gate_timeout_ms: spec.gate_timeout_ms,
            revert_on_failure: spec.revert_on_failure,
        }))
    }

    /// Releases the next wave of `progress`, or halts it at its last released wave for
    /// `halt` — a change set that writes nothing; `Ok(None)` when there is nothing to do.
    pub fn rollout_step(
        &mut self,
        progress: &Progress,
        halt: Option<String>,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        if !progress.moving() {
            return Ok(None);
        }
        let id = crate::model::ChangeSetId::of(&progress.version);
        let version: Version = progress.version.clone();
        let (mark, message) = match halt {
            Some(reason) => {
                let wave = progress.released - 1;
                (
                    Rollout::Halted {
                        version,
                        wave,
                        reason: reason.clone(),
                    },
                    format!("rollout of {id} halted at wave {}: {reason}", wave + 1),
                )
            }
            None => {
                let wave = progress.released;
                let name = progress.waves.get(wave).map_or("", |w| w.name.as_str());
                (
                    Rollout::Released { version, wave },
                    format!(
                        "rollout of {id}: wave {} of {} ({name}) released",
                        wave + 1,
                        progress.waves.len()
                    ),
                )
            }
        };
        let mut meta = self.meta(&agent_caller(), "agent", Source::Cli, message);
        meta.rollout = Some(mark);
        Ok(Some(self.mark(meta, wall_ms)?))
    }

    /// Steers the staged rollout `prefix` names (a change set id), or the only one still
    /// moving or halted: halts it, releases every remaining wave, or reverts it.
    pub fn steer_rollout(
        &mut self,
        caller: &Caller,
        prefix: Option<&str>,
        action: &crate::protocol::RolloutAction,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        use crate::protocol::RolloutAction;
        let open: Vec<Progress> = self
            .recent
            .rollouts
            .all()
            .filter(|p| match prefix {
                Some(id) => crate::model::ChangeSetId::of(&p.version).matches(id),
                None => !p.finished() && !p.reverted,
            })
            .cloned()
            .collect();
        let p = match open.as_slice() {
            [one] => one,
            [] => {
                return Err(invalid(
                    match prefix {
                        Some(id) => format!("no staged change set has an id starting {id}"),
                        None => "no rollout is moving or halted".to_owned(),
                    },
                    Some("`strata status` shows the rollouts; `strata log` the change sets"),
                ));
            }
            many => {
                let ids: Vec<String> = many
                    .iter()
                    .map(|p| crate::model::ChangeSetId::of(&p.version).to_string())
                    .collect();
                return Err(invalid(
                    format!("{} rollouts match: {}", many.len(), ids.join(", ")),
                    Some("name one by its change set id: `strata rollout … ID`"),
                ));
            }
        };
        let id = crate::model::ChangeSetId::of(&p.version);
        if p.reverted {
            return Err(invalid(format!("change set {id} was reverted"), None));
        }
        let done = |what: &str| {
            invalid(
                format!("the rollout of {id} {what}: {}", p.describe()),
                None,
            )
        };
        let (mark, message) = match action {
            RolloutAction::Undo => {
                let why = format!("revert {id}: its rollout undone by {}", caller.user);
                return self.revert_change(&p.version, wall_ms, Some(why));
            }
            RolloutAction::Halt { .. } if !p.moving() => return Err(done("is not moving")),
            RolloutAction::Halt { reason } => (
                Rollout::Halted {
                    version: p.version.clone(),
                    wave: p.released - 1,
                    reason: format!("halted by {}: {reason}", caller.user),
                },
                format!(
                    "rollout of {id} halted at wave {} by {}: {reason}",
                    p.released, caller.user
                ),
            ),
            RolloutAction::Promote if p.finished() => return Err(done("is done")),
            RolloutAction::Promote => (
                Rollout::Released {
                    version: p.version.clone(),
                    wave: p.waves.len() - 1,
                },
                format!(
                    "rollout of {id}: every remaining wave released by {} (promoted)",
                    caller.user
                ),
            ),
        };
        let mut meta = self.meta(caller, &caller.user, Source::Cli, message);
        meta.rollout = Some(mark);
        Ok(Some(self.mark(meta, wall_ms)?))
    }
}
