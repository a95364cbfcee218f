//! The agent's decisions, over any [`Store`]: apply a change set, roll back, create a
//! cluster, bootstrap standalone settings. No sockets, no files of its own, and the wall
//! time is passed in, so tests run it on a [`crate::state::MemoryStore`].

use super::authorize::{check_authority, first_failure};
use super::caller::{Authority, Caller, Refusal, invalid};
use crate::model::{
    EntryValue, GroupName, Level, MachineName, Membership, Mode, Node, OriginKind, SectionName,
};
use crate::plan::Origin;
use crate::schema::Catalogue;
use crate::state::{
    Base, ChangeMeta, ChangeSet, ChangeSetId, Clock, CommitError, Key, Live, Merged, Proposal,
    Source, Store, StoreError, Version, Writes, find_change_set, state_as_of,
};

/// The store, the clock and who this machine is.
pub struct Core<S> {
    /// The durable store.
    pub store: S,
    /// The hybrid logical clock, continuing after the store's last version.
    pub clock: Clock,
    /// This machine's name.
    pub machine: MachineName,
    /// The address peers reach it at.
    pub address: String,
    /// What writers ask of the history, kept up to date as change sets come in, so that
    /// no write reads the whole history.
    pub recent: Recent,
}

/// What the core keeps of its history, one change set at a time.
#[derive(Debug, Default)]
pub struct Recent {
    /// The staged rollouts and how far each got ([`crate::rollout`]).
    pub rollouts: crate::rollout::Rollouts,
    /// The trials (commit confirmed) this machine reverts if their time runs out
    /// ([`super::trial`]).
    pub trials: super::trial::Trials,
    /// The newest change set stamped with a commit: its version and meta (what
    /// `status` calls the last applied commit, and whether a follower applied it).
    pub last_applied: Option<(Version, ChangeMeta)>,
}

impl Recent {
    /// Notes change set `cs`, just stored.
    pub fn note(&mut self, cs: &ChangeSet) {
        self.rollouts.note(cs);
        self.trials.note(cs, crate::state::wall_ms());
        if matches!(cs.meta.source, Source::Git { .. })
            && self
                .last_applied
                .as_ref()
                .is_none_or(|(v, _)| *v < cs.version)
        {
            self.last_applied = Some((cs.version.clone(), cs.meta.clone()));
        }
    }

    /// Forgets everything and notes `history`.
    pub fn reset(&mut self, history: &[ChangeSet]) {
        *self = Recent::default();
        for cs in history {
            self.note(cs);
        }
        self.trials.reset(history, crate::state::wall_ms());
    }
}

impl<S: Store> Core<S> {
    /// Wraps `store`, restarting the clock after its last version.
    pub fn new(store: S, machine: MachineName, address: String) -> Result<Core<S>, StoreError> {
        let clock = Clock::starting_after(store.last_hlc()?);
        let mut recent = Recent::default();
        recent.reset(&store.change_sets()?);
        Ok(Core {
            store,
            clock,
            machine,
            address,
            recent,
        })
    }

    /// Replaces the store's history with `change_sets` ([`Store::replace`]).
    pub(super) fn replace(&mut self, change_sets: Vec<ChangeSet>) -> Result<(), StoreError> {
        self.store.replace(change_sets)?;
        self.recent.reset(&self.store.change_sets()?);
        Ok(())
    }

    pub(crate) fn propose(
        &mut self,
        writes: Writes,
        base: Base,
        meta: ChangeMeta,
        wall_ms: u64,
    ) -> Result<ChangeSet, CommitError> {
        self.propose_settling(writes, base, meta, wall_ms, Vec::new())
    }

    /// As [`Core::propose`], settling the lost writes `settles` (see
    /// [`ChangeSet::settles`]).
    fn propose_settling(
        &mut self,
        writes: Writes,
        base: Base,
        meta: ChangeMeta,
        wall_ms: u64,
        settles: Vec<Version>,
    ) -> Result<ChangeSet, CommitError> {
        let version = Version {
            hlc: self.clock.now(wall_ms),
            origin: self.machine.clone(),
        };
        let cs = self.store.commit(Proposal {
            writes,
            base,
            meta,
            version,
            wall_ms,
            settles,
        })?;
        self.recent.note(&cs);
        Ok(cs)
    }

    /// Commits a change set that writes nothing and says what `meta` says (a
    /// confirmation, a wave released, a rollout halted).
    pub(super) fn mark(&mut self, meta: ChangeMeta, wall_ms: u64) -> Result<ChangeSet, Refusal> {
        Ok(self.propose(Writes::new(), Default::default(), meta, wall_ms)?)
    }

    pub(super) fn meta(
        &self,
        caller: &Caller,
        author: &str,
        source: Source,
        message: String,
    ) -> ChangeMeta {
        ChangeMeta {
            author: author.to_owned(),
            user: caller.user.clone(),
            host: self.machine.to_string(),
            origin_kind: match source {
                Source::Git { .. } => caller.origin_kind,
                Source::Cli => OriginKind::Claimed,
            },
            source,
            message,
            confirm: None,
            rollout: None,
        }
    }

    /// On first start (an empty store), records the machine's standalone settings at
    /// machine level. Returns the change set, if one was made.
    pub fn bootstrap(
        &mut self,
        standalone: &[Node],
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        if !self.store.change_sets()?.is_empty() || standalone.is_empty() {
            return Ok(None);
        }
        let mode = Mode::Machine(self.machine.clone());
        let mut writes = Writes::new();
        for n in standalone {
            let name = SectionName::new(&n.name).map_err(|e| invalid(e.to_string(), None))?;
            writes.insert(
                Key::section(mode.clone(), name),
                Some(EntryValue::Section(n.clone())),
            );
        }
        let base = writes.keys().map(|k| (k.clone(), None)).collect();
        let caller = Caller {
            user: "agent".into(),
            authority: Authority::All,
            followed: None,
            break_glass: None,
            origin_kind: crate::model::OriginKind::Claimed,
        };
        let meta = self.meta(&caller, "agent", Source::Cli, "standalone settings".into());
        Ok(Some(self.propose(writes, base, meta, wall_ms)?))
    }

    /// Commits `writes` if `base` is still current. `Ok(None)`: nothing to write.
    pub fn apply(
        &mut self,
        caller: &Caller,
        writes: Writes,
        base: Base,
        origin: &Origin,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        self.apply_with(caller, writes, base, origin, wall_ms, Vec::new(), None)
    }

    /// As [`Core::apply`], settling the lost writes `settles` (`check --resolve`).
    pub fn apply_settling(
        &mut self,
        caller: &Caller,
        writes: Writes,
        base: Base,
        origin: &Origin,
        wall_ms: u64,
        settles: Vec<Version>,
    ) -> Result<Option<ChangeSet>, Refusal> {
        self.apply_with(caller, writes, base, origin, wall_ms, settles, None)
    }

    /// As [`Core::apply_settling`], the change set being `confirm` to commit confirmed
    /// (a trial: [`super::trial`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_with(
        &mut self,
        caller: &Caller,
        writes: Writes,
        base: Base,
        origin: &Origin,
        wall_ms: u64,
        settles: Vec<Version>,
        confirm: Option<crate::model::Confirm>,
    ) -> Result<Option<ChangeSet>, Refusal> {
        check_authority(&writes, caller.authority)?;
        if let Some(k) = writes.keys().find(|k| !base.contains_key(*k)) {
            return Err(invalid(
                format!("the change set writes {k} but gives no base version for it"),
                Some(
                    "a plan records the live version of every entry it changes; re-run `strata plan`",
                ),
            ));
        }
        if writes.is_empty() {
            return Ok(None);
        }
        let frozen = self.open_freeze(wall_ms)?;
        if caller.followed.is_some() || frozen.is_some() {
            let keys: Vec<Key> = writes.keys().cloned().collect();
            let current = self.store.entries(&keys)?;
            super::guard::check(caller, &writes, &current, &origin.source)?;
            super::guard::check_freeze(caller, &writes, &current, frozen.as_ref())?;
        }
        // The checks need membership and the catalogue of what is there, not its sections.
        let known = self.store.live_under(&["@".into(), "#".into()])?;
        super::authorize::check_writes(&writes, &known, &self.machine)?;
        if writes.keys().any(|k| !matches!(k, Key::Pending(_))) {
            super::authorize::check_references(&writes, &self.store.live()?)?;
        }
        let message = match (&frozen, &caller.break_glass) {
            (Some(w), Some(why)) => format!(
                "{}\n\nbreak glass during change freeze `{}` by {}: {why}",
                origin.message, w.name, caller.user
            ),
            _ => origin.message.clone(),
        };
        // `check --resolve` settles what is there: it is not a change to roll out.
        let rollout = match settles.is_empty() {
            true => self.staging(&writes)?,
            false => None,
        };
        let mut meta = self.meta(caller, &origin.author, origin.source.clone(), message);
        meta.confirm = confirm;
        meta.rollout = rollout;
        Ok(Some(
            self.propose_settling(writes, base, meta, wall_ms, settles)?,
        ))
    }

    /// Applies the state as of change set `to` (a prefix of its id) as a new change set.
    pub fn rollback(
        &mut self,
        caller: &Caller,
        to: &str,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let (id, writes, base) = self.rollback_writes(to)?;
        if writes.is_empty() {
            return Ok(None);
        }
        check_authority(&writes, caller.authority)?;
        let keys: Vec<Key> = writes.keys().cloned().collect();
        let live = self.store.entries(&keys)?;
        super::guard::check(caller, &writes, &live, &Source::Cli)?;
        let frozen = self.open_freeze(wall_ms)?;
        super::guard::check_freeze(caller, &writes, &live, frozen.as_ref())?;
        let meta = self.meta(
            caller,
            &caller.user,
            Source::Cli,
            format!("rollback to change set {id}"),
        );
        Ok(Some(self.propose(writes, base, meta, wall_ms)?))
    }

    /// What [`Core::rollback`] to `to` writes, and against which versions: the id of the
    /// change set `to` names, the writes that bring the live state back to the state as
    /// of it, and their base. Also what `rollback` shows before it asks.
    pub fn rollback_writes(&self, to: &str) -> Result<(ChangeSetId, Writes, Base), Refusal> {
        let sets = self.store.change_sets()?;
        let target = find_change_set(&sets, to).map_err(|e| {
            let last = sets
                .last()
                .map_or_else(|| "none yet".to_owned(), |c| c.id().to_string());
            invalid(
                e.to_string(),
                Some(&format!(
                    "`strata log` lists the change sets; the last is {last}"
                )),
            )
        })?;
        let id = target.id();
        let state = state_as_of(&sets, &target.version);
        let live = self.store.live()?;
        let mut writes = Writes::new();
        // The cluster's identities are not rolled back: a rollback to before a rotation
        // would lose the key newer secrets are encrypted to.
        let keys: std::collections::BTreeSet<&Key> = state
            .keys()
            .chain(live.keys())
            .filter(|k| !k.is_secret())
            .collect();
        for key in keys {
            let have = live.get(key).and_then(|e| e.value.clone());
            let want =
                crate::state::facts::restored(state.get(key).cloned().flatten(), have.as_ref());
            if want != have {
                writes.insert(key.clone(), want);
            }
        }
        let base = base_of(&live, writes.keys());
        Ok((id, writes, base))
    }

    /// Turns a standalone machine into a one-machine cluster: membership for the cluster,
    /// `Main_Group` and this machine; every machine-level section that may live at the
    /// cluster level moves there (machine-only ones stay), as AsyncOS does on create.
    pub fn create_cluster(
        &mut self,
        caller: &Caller,
        name: &str,
        catalogue: &Catalogue,
        wall_ms: u64,
    ) -> Result<ChangeSet, Refusal> {
        if name.trim().is_empty() {
            return Err(invalid("the cluster needs a name", None));
        }
        let live = self.store.live()?;
        if let Some(existing) = live.get(&Key::Cluster).and_then(|e| e.value.as_ref()) {
            return Err(invalid(
                format!(
                    "this machine is already in a cluster: {}",
                    existing.to_text(&Key::Cluster).trim()
                ),
                Some("a machine belongs to one cluster; `strata plan` shows its state"),
            ));
        }
        let mine = Mode::Machine(self.machine.clone());
        let mut writes = Writes::new();
        writes.insert(
            Key::Cluster,
            Some(EntryValue::Cluster {
                name: name.to_owned(),
            }),
        );
        writes.insert(Key::Group(GroupName::main()), Some(EntryValue::Group));
        writes.insert(
            Key::Machine(self.machine.clone()),
            Some(EntryValue::Machine(Membership::undeclared(
                GroupName::main(),
                &self.address,
            ))),
        );
        // The cluster's first identity: members decrypt the repo's secrets with it.
        let (key, identity) = crate::secret::identity::generate(wall_ms);
        writes.insert(key, Some(identity));
        for (key, entry) in &live {
            let (Key::Section { mode, section }, Some(value)) = (key, &entry.value) else {
                continue;
            };
            let clusterable = catalogue
                .get(section.as_str())
                .is_none_or(|s| s.allows(Level::Cluster));
            if *mode == mine && clusterable {
                writes.insert(
                    Key::section(Mode::Cluster, section.clone()),
                    Some(value.clone()),
                );
                writes.insert(key.clone(), None);
            }
        }
        let base = base_of(&live, writes.keys());
        let meta = self.meta(
            caller,
            &caller.user,
            Source::Cli,
            format!("create cluster {name}"),
        );
        Ok(self.propose(writes, base, meta, wall_ms)?)
    }

    /// Merges a change set made on another machine (last writer wins per key), after
    /// moving the clock past its version so later local writes order after it. A version
    /// too far in the future is refused.
    pub fn merge(&mut self, change_set: ChangeSet, wall_ms: u64) -> Result<Merged, Refusal> {
        check_kinds(&change_set.writes)?;
        self.clock
            .observe(change_set.version.hlc, wall_ms)
            .map_err(|e| {
                invalid(
                    format!("change set from {}: {e}", change_set.version.origin),
                    None,
                )
            })?;
        // What the history cache reads of it: all but its writes.
        let light = ChangeSet {
            writes: Writes::new(),
            supersedes: None,
            settles: Vec::new(),
            meta: change_set.meta.clone(),
            version: change_set.version.clone(),
            ..change_set
        };
        let merged = self.store.merge(change_set)?;
        if merged.new {
            self.recent.note(&light);
        }
        Ok(merged)
    }

    /// What this machine's pipeline needs of the store: the catalogue, the cluster's
    /// entries, its own membership and sections, and its group's sections — a few dozen
    /// entries of a store that may hold thousands.
    pub fn machine_view(&self) -> Result<Live, StoreError> {
        let me = &self.machine;
        let mut view = self.store.live_under(&[
            "#".into(),
            "@cluster".into(),
            "cluster/".into(),
            format!("@machine:{me}"),
            format!("machine:{me}/"),
            "@identity:".into(),
        ])?;
        let group = match view
            .get(&Key::Machine(me.clone()))
            .and_then(|e| e.value.as_ref())
        {
            Some(EntryValue::Machine(m)) => m.group.clone(),
            _ => GroupName::main(),
        };
        view.extend(self.store.live_under(&[format!("group:{group}/")])?);
        Ok(view)
    }

    /// The change-freeze window open at `wall_ms`, if the cluster declares one.
    pub fn open_freeze(&self, wall_ms: u64) -> Result<Option<crate::freeze::Window>, StoreError> {
        let key = Key::Section {
            mode: Mode::Cluster,
            section: SectionName::new(crate::freeze::SECTION).expect("a valid section name"),
        };
        let live = self.store.entries(std::slice::from_ref(&key))?;
        Ok(match live.get(&key).and_then(|e| e.value.as_ref()) {
            Some(EntryValue::Section(node)) => crate::freeze::open_at(node, wall_ms),
            _ => None,
        })
    }

    /// Every live entry.
    pub fn live(&self) -> Result<Live, StoreError> {
        self.store.live()
    }
}

pub(super) fn base_of<'a>(live: &Live, keys: impl Iterator<Item = &'a Key>) -> Base {
    keys.map(|k| (k.clone(), live.get(k).map(|e| e.stamp.version.clone())))
        .collect()
}

/// Every value must be of the kind its key says (a `dns` section under `…/dns`,
/// membership under `@machine:…`): a client cannot store a mismatch, and a refused write
/// leaves nothing behind. Checked on every core; the schema checks of a large apply will
/// run here too.
pub fn check_kinds(writes: &Writes) -> Result<(), Refusal> {
    let values: Vec<(&Key, &EntryValue)> = writes
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
    match first_failure(&values, |(k, v)| v.misfit(k)) {
        Some(message) => Err(invalid(message, None)),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
