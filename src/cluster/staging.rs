//! Staged rollouts on the core ([`crate::rollout`]): an apply to a cluster that declares
//! waves is staged in them (resolved over the members as they are), while another still
//! moves the apply is refused; the machine that took it releases each wave, or halts it,
//! with a change set that writes nothing.

use super::caller::{Refusal, invalid};
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
}
