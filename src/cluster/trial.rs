//! Commit confirmed, mesh-wide (`apply --confirm-within`, `strata confirm`): a change set
//! applied on trial is reverted by every machine, each by its own clock, unless a
//! confirmation reaches it first — so a change to interfaces or routes that cuts the
//! operator off undoes itself, even on machines cut off from the rest.
//!
//! - The trial is an ordinary change set whose meta says its deadline
//!   ([`Confirm::Trial`]); it replicates and runs as any other.
//! - `strata confirm` commits a change set that writes nothing and says which trial it
//!   confirms ([`Confirm::Confirms`]).
//! - A machine that held the trial before its deadline and has seen no confirmation when
//!   the deadline passes on its own clock commits the revert ([`Confirm::Reverts`]): for
//!   each key the trial wrote and that nothing has written since, the value the trial
//!   replaced. Several machines may each commit one; they write the same values.
//! - Reverts rank just above their trial and below every later write
//!   ([`crate::state::precedence`]): on heal, a revert made on one side undoes the trial on
//!   the other side too (the revert stands, and the log says why), while a write made
//!   after the trial, anywhere, is never undone.
//!
//! A machine that learns of a trial only after its deadline (it was down or away) does
//! not revert it itself: it takes whatever the others decided, as their confirmation or
//! revert reaches it.

use std::collections::BTreeMap;

use super::caller::{Caller, Refusal, invalid};
use super::core::{Core, base_of};
use crate::model::{ChangeSetId, Confirm, Key, Source};
use crate::plan::Origin;
use crate::state::{ChangeSet, Store, Version, Writes, find_change_set};

/// The trials a machine watches: version → deadline (wall ms), those it held before
/// their deadline and has seen neither confirmed nor reverted.
#[derive(Debug, Default)]
pub struct Trials {
    pending: BTreeMap<Version, u64>,
}

impl Trials {
    /// Notes what `cs` says of commit confirmed, seen at `now_ms`: a trial to watch (if
    /// its deadline is still ahead), or a trial confirmed or reverted.
    pub fn note(&mut self, cs: &ChangeSet, now_ms: u64) {
        match &cs.meta.confirm {
            Some(Confirm::Trial { by_ms }) if *by_ms > now_ms => {
                self.pending.insert(cs.version.clone(), *by_ms);
            }
            Some(Confirm::Confirms { version } | Confirm::Reverts { version }) => {
                self.pending.remove(version);
            }
            _ => {}
        }
    }

    /// Forgets every trial and notes those of `history` (a store replaced, or read at
    /// start) at `now_ms`.
    pub fn reset(&mut self, history: &[ChangeSet], now_ms: u64) {
        self.pending.clear();
        for cs in history {
            self.note(cs, now_ms);
        }
        // A confirmation or revert recorded before its trial: the trial is settled.
        for cs in history {
            if let Some(Confirm::Confirms { version } | Confirm::Reverts { version }) =
                &cs.meta.confirm
            {
                self.pending.remove(version);
            }
        }
    }

    /// Stops watching the trial of `version`.
    pub fn forget(&mut self, version: &Version) {
        self.pending.remove(version);
    }

    /// The trials whose deadline has passed at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> Vec<Version> {
        self.pending
            .iter()
            .filter(|(_, by)| **by <= now_ms)
            .map(|(v, _)| v.clone())
            .collect()
    }

    /// The trials still pending, with their deadlines.
    pub fn pending(&self) -> impl Iterator<Item = (&Version, u64)> {
        self.pending.iter().map(|(v, by)| (v, *by))
    }
}

/// How the trial of `version` stands in `history`: confirmed, or reverted (by which
/// change set), or neither.
fn settled<'a>(history: &'a [ChangeSet], version: &Version) -> Option<&'a ChangeSet> {
    history.iter().find(|cs| {
        matches!(&cs.meta.confirm,
            Some(Confirm::Confirms { version: v } | Confirm::Reverts { version: v }) if v == version)
    })
}

impl<S: Store> Core<S> {
    /// Applies `writes` on trial: unless confirmed within `window_ms`, every machine
    /// reverts them.
    pub fn apply_trial(
        &mut self,
        caller: &Caller,
        writes: Writes,
        base: crate::state::Base,
        origin: &Origin,
        wall_ms: u64,
        window_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let by_ms = wall_ms.saturating_add(window_ms);
        let origin = Origin {
            message: format!(
                "{}\n\ncommit confirmed: every machine reverts this unless `strata confirm` reaches it within {}",
                origin.message,
                humantime::format_duration(std::time::Duration::from_millis(window_ms))
            ),
            ..origin.clone()
        };
        self.apply_with(
            caller,
            writes,
            base,
            &origin,
            wall_ms,
            Vec::new(),
            Some(Confirm::Trial { by_ms }),
        )
    }

    /// Confirms the trial `prefix` names (its change set id), or the only one pending.
    pub fn confirm(
        &mut self,
        caller: &Caller,
        prefix: Option<&str>,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let history = self.store.change_sets()?;
        let trial = match prefix {
            Some(p) => {
                let cs = find_change_set(&history, p).map_err(|e| invalid(e.to_string(), None))?;
                if !matches!(cs.meta.confirm, Some(Confirm::Trial { .. })) {
                    return Err(invalid(
                        format!("change set {} was not applied on trial", cs.id()),
                        Some("only a change set applied with `--confirm-within` is confirmed"),
                    ));
                }
                cs
            }
            None => {
                let open: Vec<&ChangeSet> = history
                    .iter()
                    .filter(|cs| matches!(cs.meta.confirm, Some(Confirm::Trial { .. })))
                    .filter(|cs| settled(&history, &cs.version).is_none())
                    .collect();
                match open.as_slice() {
                    [one] => *one,
                    [] => {
                        return Err(invalid(
                            "no change set is waiting for confirmation",
                            Some(
                                "`strata log` shows the change sets applied on trial and what became of them",
                            ),
                        ));
                    }
                    many => {
                        let ids: Vec<String> = many.iter().map(|cs| cs.id().to_string()).collect();
                        return Err(invalid(
                            format!(
                                "{} change sets wait for confirmation: {}",
                                many.len(),
                                ids.join(", ")
                            ),
                            Some("name the one to confirm: `strata confirm ID`"),
                        ));
                    }
                }
            }
        };
        match settled(&history, &trial.version).map(|cs| (cs, &cs.meta.confirm)) {
            Some((_, Some(Confirm::Confirms { .. }))) => return Ok(None),
            Some((by, _)) => {
                return Err(invalid(
                    format!(
                        "change set {} was reverted by {} (change set {}): it was not confirmed in time",
                        trial.id(),
                        by.meta.host,
                        by.id()
                    ),
                    Some("apply it again, and confirm within the window"),
                ));
            }
            None => {}
        }
        let id: ChangeSetId = trial.id();
        let mut meta = self.meta(caller, &caller.user, Source::Cli, format!("confirm {id}"));
        meta.confirm = Some(Confirm::Confirms {
            version: trial.version.clone(),
        });
        Ok(Some(self.mark(meta, wall_ms)?))
    }

    /// Reverts the trial of `version`, unconfirmed at its deadline: writes back the
    /// values it replaced, for the keys nothing has written since. `Ok(None)` if it was
    /// confirmed or reverted meanwhile.
    pub fn revert_trial(
        &mut self,
        version: &Version,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        self.revert_change(version, wall_ms, None)
    }

    /// Reverts the change set of `version` as [`Core::revert_trial`] does, saying `why`
    /// (default: its window ran out unconfirmed).
    pub fn revert_change(
        &mut self,
        version: &Version,
        wall_ms: u64,
        why: Option<String>,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let Some(trial) = self
            .store
            .change_sets_of(std::slice::from_ref(version))?
            .pop()
        else {
            return Ok(None);
        };
        let history = self.store.change_sets()?;
        if settled(&history, version).is_some() {
            return Ok(None);
        }
        let keys: Vec<Key> = trial.writes.keys().cloned().collect();
        let live = self.store.entries(&keys)?;
        let replaced = trial.supersedes.clone().unwrap_or_default();
        let before: Vec<Version> = replaced.values().flatten().cloned().collect();
        let earlier = self.store.change_sets_of(&before)?;
        let mut writes = Writes::new();
        for key in &keys {
            // Written since the trial (here): that write stays.
            if live.get(key).is_some_and(|e| e.stamp.version != *version) {
                continue;
            }
            let value = match replaced.get(key).cloned().flatten() {
                Some(v) => earlier
                    .iter()
                    .find(|cs| cs.version == v)
                    .and_then(|cs| cs.writes.get(key).cloned().flatten()),
                None => None,
            };
            let now = live.get(key).and_then(|e| e.value.as_ref());
            writes.insert(key.clone(), crate::state::facts::restored(value, now));
        }
        let base = base_of(&live, writes.keys());
        let by = match trial.meta.confirm {
            Some(Confirm::Trial { by_ms }) => by_ms,
            _ => wall_ms,
        };
        let mut meta = self.meta(
            &super::membership::agent_caller(),
            "agent",
            Source::Cli,
            why.unwrap_or_else(|| {
                format!(
                    "revert {}: not confirmed by {} by {}'s clock (commit confirmed)",
                    trial.id(),
                    crate::text::utc(by),
                    self.machine
                )
            }),
        );
        meta.confirm = Some(Confirm::Reverts {
            version: version.clone(),
        });
        Ok(Some(self.propose(writes, base, meta, wall_ms)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntryValue, MachineName};
    use crate::state::{Live, MemoryStore};

    fn admin() -> Caller {
        Caller::with_role("admin", crate::cluster::users::Role::Administrator)
    }

    fn dns(server: &str) -> Option<EntryValue> {
        let key: Key = "cluster/dns".parse().unwrap();
        Some(
            crate::config::value_from_text(&key, &format!("dns {{ server \"{server}\"; }}"))
                .unwrap(),
        )
    }

    fn origin() -> Origin {
        Origin {
            source: Source::Cli,
            author: "admin".into(),
            message: "dns".into(),
        }
    }

    fn core() -> Core<MemoryStore> {
        let mut c = Core::new(
            MemoryStore::default(),
            MachineName::new("lab1").unwrap(),
            "10.1.0.1".into(),
        )
        .unwrap();
        c.create_cluster(
            &admin(),
            "americas",
            &crate::schema::Catalogue::builtin(),
            1,
        )
        .unwrap();
        c
    }

    /// Applies cluster `dns` = `server`, on trial for `window` ms if given.
    fn set_dns(c: &mut Core<MemoryStore>, server: &str, at: u64, window: Option<u64>) -> ChangeSet {
        let key: Key = "cluster/dns".parse().unwrap();
        let live = c.store.entries(std::slice::from_ref(&key)).unwrap();
        let base = base_of(&live, [&key].into_iter());
        let writes = Writes::from([(key, dns(server))]);
        match window {
            Some(w) => c.apply_trial(&admin(), writes, base, &origin(), at, w),
            None => c.apply(&admin(), writes, base, &origin(), at),
        }
        .unwrap()
        .unwrap()
    }

    fn live_dns(c: &Core<MemoryStore>) -> Option<EntryValue> {
        let live: Live = c.live().unwrap();
        live.get(&"cluster/dns".parse::<Key>().unwrap())
            .and_then(|e| e.value.clone())
    }

    #[test]
    fn a_trial_is_confirmed_once_or_reverted_to_what_it_replaced() {
        let mut c = core();
        set_dns(&mut c, "10.0.0.1", 10, None);
        // Confirmed: it stays; confirming again changes nothing.
        let trial = set_dns(&mut c, "10.9.9.9", 20, Some(1000));
        let mut trials = Trials::default();
        trials.note(&trial, 25);
        assert_eq!(trials.expired(1019), Vec::<Version>::new());
        assert_eq!(trials.expired(1020), vec![trial.version.clone()]);
        let confirmed = c.confirm(&admin(), None, 30).unwrap().unwrap();
        assert!(confirmed.writes.is_empty());
        trials.note(&confirmed, 31);
        assert!(trials.expired(5000).is_empty());
        assert!(c.confirm(&admin(), None, 31).is_err(), "nothing waits");
        assert!(
            c.confirm(&admin(), Some(&trial.id().to_string()), 32)
                .unwrap()
                .is_none()
        );
        assert!(c.revert_trial(&trial.version, 2000).unwrap().is_none());
        assert_eq!(live_dns(&c), dns("10.9.9.9"));

        // Not confirmed: the revert writes back what the trial replaced.
        let trial = set_dns(&mut c, "10.6.6.6", 40, Some(1000));
        let revert = c.revert_trial(&trial.version, 1040).unwrap().unwrap();
        assert_eq!(live_dns(&c), dns("10.9.9.9"));
        assert!(
            revert.meta.message.contains("not confirmed"),
            "{}",
            revert.meta.message
        );
        let late = c
            .confirm(&admin(), Some(&trial.id().to_string()), 1050)
            .unwrap_err();
        assert!(late.to_string().contains("was reverted by lab1"), "{late}");

        // Written again after the trial: the revert leaves that write alone.
        let trial = set_dns(&mut c, "10.7.7.7", 2000, Some(1000));
        set_dns(&mut c, "10.8.8.8", 2100, None);
        let revert = c.revert_trial(&trial.version, 3000).unwrap().unwrap();
        assert!(revert.writes.is_empty());
        assert_eq!(live_dns(&c), dns("10.8.8.8"));

        // A trial seen only after its deadline is not this machine's to revert.
        let mut late = Trials::default();
        late.note(&trial, 3001);
        assert!(late.expired(9999).is_empty());
    }
}
