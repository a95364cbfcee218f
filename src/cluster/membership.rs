//! The mesh's changes to membership, over any store: admitting a joiner (on the member
//! it joins through), taking the cluster's state (on the joiner), marking a machine
//! disconnected or connected, removing one, and leaving — a removed machine keeps its
//! flattened effective config as standalone settings, as AsyncOS's `removemachine` does.

use super::caller::Authority;
use super::caller::{Caller, Refusal, invalid};
use super::core::{Core, base_of};
use crate::model::{
    EntryValue, GroupName, Key, Level, MachineName, Membership, Mode, Node, SectionName,
};
use crate::protocol::JoinRequest;
use crate::resolve::entries::EntryLayers;
use crate::schema::Catalogue;
use crate::state::{ChangeSet, Live, Source, Store, Writes};

/// How the joiner proved it may join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// An administrator's passphrase.
    Passphrase,
    /// Its host key, registered with `prepjoin add` for this machine name.
    PreShared(MachineName),
}

/// The cluster's name in `live`, if the machine is in one.
pub fn cluster_name(live: &Live) -> Option<String> {
    match live.get(&Key::Cluster).and_then(|e| e.value.as_ref()) {
        Some(EntryValue::Cluster { name }) => Some(name.clone()),
        _ => None,
    }
}

/// The membership of `machine` in `live`.
pub fn membership_of<'a>(live: &'a Live, machine: &MachineName) -> Option<&'a Membership> {
    match live
        .get(&Key::Machine(machine.clone()))
        .and_then(|e| e.value.as_ref())
    {
        Some(EntryValue::Machine(m)) => Some(m),
        _ => None,
    }
}

/// Every machine's membership in `live`.
pub fn members(live: &Live) -> impl Iterator<Item = (&MachineName, &Membership)> {
    live.iter().filter_map(|(k, e)| match (k, &e.value) {
        (Key::Machine(m), Some(EntryValue::Machine(info))) => Some((m, info)),
        _ => None,
    })
}

/// The flattened effective config of `machine`: every section defined at some level
/// for it, as a machine-level section (factory defaults are left out: a standalone
/// machine gets them anyway). Its secrets are decrypted: a machine that leaves takes no
/// identity of the cluster with it, and keeps running what it ran (as removemachine
/// keeps an appliance's passwords); rotate the cluster's identity after a removal.
pub fn flattened(live: &Live, machine: &MachineName, catalogue: &Catalogue) -> Vec<Node> {
    let layers = EntryLayers::new(
        live.iter()
            .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v))),
    );
    let identities = crate::secret::identity::keys(
        crate::secret::identity::all(live)
            .into_iter()
            .map(|(_, i)| i),
    );
    layers
        .effective(catalogue, machine.as_str())
        .into_values()
        .filter(|(_, from)| from.is_some())
        .map(|(node, _)| {
            let mut node = node.clone();
            for failed in crate::secret::identity::decrypt_node(&mut node, &identities, machine) {
                tracing::error!("a secret of the flattened config cannot be decrypted, {failed}");
            }
            node
        })
        .collect()
}

/// Refuses to admit `me` at `address` into a cluster whose other machines are addressed
/// the other way: the seed's rule is all hostnames or all IP addresses, never mixed, as
/// `validate` checks a repo.
fn mixed_addresses(live: &Live, me: &MachineName, address: &str) -> Result<(), Refusal> {
    let ip = crate::model::is_ip(address);
    let others: Vec<String> = members(live)
        .filter(|(m, info)| *m != me && crate::model::is_ip(&info.address) != ip)
        .take(3)
        .map(|(m, info)| format!("{m} at {}", info.address))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    let (mine, theirs) = if ip {
        ("an IP address", "hostnames")
    } else {
        ("a hostname", "IP addresses")
    };
    Err(invalid(
        format!(
            "{me} would join at {address}, {mine}, but the cluster's machines are addressed by {theirs} ({}): a cluster's machines are addressed all by hostname or all by IP address, never mixed",
            others.join(", ")
        ),
        Some(&format!(
            "give the joiner {} (`address` in its agent.kdl, or `--listen`), or declare it in the repo with one",
            if ip { "a hostname" } else { "an IP address" }
        )),
    ))
}

/// The seed's 20-appliance note, when `joiner` makes the cluster of `live` grow past its
/// threshold ([`crate::model::appliance::max_machines`]): joined members count, and the
/// `member` admitting it (which may not have recorded its host key yet).
fn too_many_members(live: &Live, member: &MachineName, joiner: &MachineName) -> Option<String> {
    let joined = members(live)
        .filter(|(m, info)| *m != joiner && (info.joined() || *m == member))
        .count();
    let mesh = Key::section(Mode::Cluster, SectionName::new("cluster-mesh").ok()?);
    let node = live
        .get(&mesh)
        .and_then(|e| e.value.as_ref())
        .and_then(EntryValue::node);
    let max = crate::model::appliance::max_machines(node);
    crate::model::appliance::too_many(joined + 1, max)
}

/// Refuses a joiner `me` of another Strata release than this member's (`own`); one that
/// does not say its version predates the rule, and is refused too.
fn same_release(
    me: &MachineName,
    theirs: Option<&str>,
    member: &MachineName,
    own: &OwnFacts,
) -> Result<(), Refusal> {
    let ours = own.strata_version.as_str();
    match theirs {
        Some(v) if crate::protocol::version::compatible(v, ours) => Ok(()),
        Some(v) => {
            let (message, help) =
                crate::protocol::version::mismatch(me.as_str(), v, member.as_str(), ours);
            Err(invalid(message, Some(&help)))
        }
        None => Err(invalid(
            format!(
                "{me} does not say which Strata version it runs: it is older than {member}'s {ours}"
            ),
            Some(
                "upgrade it to the cluster's version, then join again (docs/operations.md: Upgrading a cluster)",
            ),
        )),
    }
}

pub(super) fn agent_caller() -> Caller {
    Caller {
        user: "agent".into(),
        authority: Authority::All,
        followed: None,
        break_glass: None,
        origin_kind: crate::model::OriginKind::Claimed,
    }
}

/// What the mesh knows of this machine that its membership must say for peers to reach
/// it (its host key, peer address and serial) and for the cluster to compare (the Strata
/// version it runs, the appliance version its settings give).
#[derive(Debug, Clone)]
pub struct OwnFacts {
    /// OpenSSH public-key line.
    pub host_key: String,
    /// Where it takes peer connections.
    pub peer: String,
    /// Its serial number.
    pub serial: String,
    /// The Strata version it runs ([`crate::protocol::strata_version`]).
    pub strata_version: String,
    /// Its appliance's version (`appliance-version` in `agent.kdl`), if known.
    pub appliance_version: Option<String>,
}

impl OwnFacts {
    /// `mine`, the membership of machine `me`, with these facts filled in: key, peer
    /// address and versions as they are now (an upgraded agent records its new version
    /// when it starts); the serial only where none is recorded (a repo's serial stands);
    /// the host of the peer address as the address where the entry gives the machine's
    /// name, as a repo that gives none does (what a join and a create record: an apply
    /// through a member that had not heard of the join yet wrote the name back).
    pub fn fill(&self, me: &MachineName, mine: &Membership) -> Membership {
        let mut updated = mine.clone();
        if updated.address == me.as_str()
            && let Some((host, _)) = crate::model::split_port(&self.peer)
        {
            updated.address = host.to_owned();
        }
        if updated.host_key.as_deref().map(str::trim) != Some(self.host_key.trim()) {
            updated.host_key = Some(self.host_key.trim().to_owned());
        }
        updated.peer = Some(self.peer.clone());
        if updated.serial.is_none() {
            updated.serial = Some(self.serial.clone());
        }
        updated.strata_version = Some(self.strata_version.clone());
        updated.appliance_version = self.appliance_version.clone();
        updated
    }
}

impl<S: Store> Core<S> {
    /// On the member a machine joins through: refuses a joiner of another Strata release
    /// ([`crate::protocol::version`]); records the joiner in the membership (with its host
    /// key, serial, peer address and versions; in the group a repo declared for it, else
    /// the one asked for, else `Main_Group`) and its machine-only sections, and forgets
    /// its pending-join entry, in one change set. Returns it and what to tell the joiner.
    pub fn admit(
        &mut self,
        caller: &Caller,
        request: &JoinRequest,
        proof: &Proof,
        catalogue: &Catalogue,
        own: Option<&OwnFacts>,
        wall_ms: u64,
    ) -> Result<(ChangeSet, Vec<String>), Refusal> {
        let live = self.store.live_under(&[
            "@".into(),
            format!("machine:{}/", request.machine),
            "cluster/cluster-mesh".into(),
        ])?;
        if cluster_name(&live).is_none() {
            return Err(invalid(
                format!("{} is not in a cluster", self.machine),
                Some("join a machine that is a member; `strata cluster create` makes one"),
            ));
        }
        let me = &request.machine;
        if let Some(own) = own {
            same_release(me, request.strata_version.as_deref(), &self.machine, own)?;
        }
        if russh::keys::PublicKey::from_openssh(&request.host_key).is_err() {
            return Err(invalid("the joiner's host key cannot be read", None));
        }
        let pending = Key::Pending(me.clone());
        if let Proof::PreShared(name) = proof {
            let registered = match live.get(&pending).and_then(|e| e.value.as_ref()) {
                Some(EntryValue::Pending(p)) => p,
                _ => {
                    return Err(Refusal::Denied(format!(
                        "{name} is not registered to join with its host key"
                    )));
                }
            };
            if name != me || registered.host_key.trim() != request.host_key.trim() {
                return Err(Refusal::Denied(format!(
                    "the host key {name} logged in with is not the one registered for {me}"
                )));
            }
            if registered.serial != request.serial {
                return Err(Refusal::Denied(format!(
                    "{me} presents serial {}, but serial {} is registered for it",
                    request.serial, registered.serial
                )));
            }
        }
        let mut notes = Vec::new();
        let existing = membership_of(&live, me);
        if let Some(m) = existing
            && let Some(key) = &m.host_key
            && key.trim() != request.host_key.trim()
        {
            return Err(invalid(
                format!("{me} is already a member, with another host key"),
                Some(&format!(
                    "remove it first (`strata cluster remove {me}`), or join under another name"
                )),
            ));
        }
        let group = match (existing, &request.group) {
            (Some(m), Some(asked)) if m.group != *asked => {
                notes.push(format!(
                    "{me} is declared in group {}; it joins that group, not {asked}",
                    m.group
                ));
                m.group.clone()
            }
            (Some(m), _) => m.group.clone(),
            (None, Some(asked)) => asked.clone(),
            (None, None) => GroupName::main(),
        };
        if live
            .get(&Key::Group(group.clone()))
            .is_none_or(|e| e.value.is_none())
        {
            return Err(invalid(
                format!("the cluster has no group {group}"),
                Some("`strata cluster list` shows the groups"),
            ));
        }
        if let Some(m) = existing
            && let Some(serial) = &m.serial
            && *serial != request.serial
        {
            return Err(invalid(
                format!(
                    "{me} is declared with serial {serial}, but presents serial {}",
                    request.serial
                ),
                Some("correct the serial in the config repo, or join the machine it names"),
            ));
        }
        let host = crate::protocol::split_host_port(&request.peer, 2222)
            .map_or_else(|| request.peer.clone(), |(h, _)| h);
        // A repo's address stands; one that gave none declared the machine's name, and
        // the joiner's own host is the better fact (see `plan::ownership::over_live`).
        let address = match existing {
            Some(m) if m.address != me.as_str() => m.address.clone(),
            _ => host,
        };
        mixed_addresses(&live, me, &address)?;
        let membership = Membership {
            group,
            address,
            host_key: Some(request.host_key.trim().to_owned()),
            serial: Some(request.serial.clone()),
            peer: Some(request.peer.clone()),
            disconnected: false,
            declared: existing.is_some_and(|m| m.declared),
            strata_version: request.strata_version.clone(),
            appliance_version: request.appliance_version.clone(),
            was: None,
            // The store stamps it when it commits (`state::facts`).
            facts_at: None,
        };
        let mut writes = Writes::new();
        writes.insert(
            Key::Machine(me.clone()),
            Some(EntryValue::Machine(membership)),
        );
        if live.get(&pending).is_some_and(|e| e.value.is_some()) {
            writes.insert(pending, None);
        }
        // The joiner must be able to reach this member: its host key and peer address go
        // in the same change set when the membership does not say them yet (the first
        // join of a new cluster), or the joiner, knowing no member's key, could neither
        // dial one nor let one in.
        if let (Some(own), Some(mine)) = (own, membership_of(&live, &self.machine)) {
            let updated = own.fill(&self.machine, mine);
            if updated != *mine {
                writes.insert(
                    Key::Machine(self.machine.clone()),
                    Some(EntryValue::Machine(updated)),
                );
            }
        }
        let mode = Mode::Machine(me.clone());
        for node in &request.machine_sections {
            let Ok(name) = SectionName::new(&node.name) else {
                continue;
            };
            let machine_only = catalogue
                .get(name.as_str())
                .is_some_and(|s| !s.allows(Level::Cluster) && !s.allows(Level::Group));
            let key = Key::section(mode.clone(), name);
            // A repo's own machine-level sections for it stay.
            if machine_only && live.get(&key).is_none_or(|e| e.value.is_none()) {
                writes.insert(key, Some(EntryValue::Section(node.clone())));
            }
        }
        super::authorize::check_writes(&writes, &live, &self.machine)?;
        notes.extend(too_many_members(&live, &self.machine, me));
        let base = base_of(&live, writes.keys());
        let how = match proof {
            Proof::Passphrase => "passphrase",
            Proof::PreShared(_) => "pre-shared key",
        };
        let meta = self.meta(
            caller,
            &caller.user,
            Source::Cli,
            format!("join {me} ({how})"),
        );
        Ok((self.propose(writes, base, meta, wall_ms)?, notes))
    }

    /// On the joiner: its state becomes the cluster's. Its own history is replaced, so
    /// its standalone (clusterable) settings give way to the cluster's; what it keeps of
    /// its own (its machine-only sections) came back in the change set that admitted it.
    pub fn take_cluster(
        &mut self,
        change_sets: Vec<ChangeSet>,
        wall_ms: u64,
    ) -> Result<(), Refusal> {
        let live_before = self.store.live_under(&["@cluster".into()])?;
        if let Some(name) = cluster_name(&live_before) {
            return Err(invalid(
                format!("this machine is already in cluster {name}"),
                Some("`strata cluster remove` it from that cluster first"),
            ));
        }
        for cs in &change_sets {
            super::core::check_kinds(&cs.writes)?;
            self.clock.observe(cs.version.hlc, wall_ms).map_err(|e| {
                invalid(format!("change set from {}: {e}", cs.version.origin), None)
            })?;
        }
        self.replace(change_sets)?;
        Ok(())
    }

    /// Records in this machine's own membership what the mesh knows of it ([`OwnFacts::fill`]:
    /// its host key, serial, peer address and versions), when the store's entry does not
    /// say them already.
    pub fn register(
        &mut self,
        me: &MachineName,
        own: &OwnFacts,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let live = self.store.live_under(&[format!("@machine:{me}")])?;
        let Some(current) = membership_of(&live, me) else {
            return Ok(None);
        };
        let updated = own.fill(me, current);
        if updated == *current {
            return Ok(None);
        }
        let mut writes = Writes::new();
        writes.insert(Key::Machine(me.clone()), Some(EntryValue::Machine(updated)));
        let base = base_of(&live, writes.keys());
        let meta = self.meta(
            &agent_caller(),
            "agent",
            Source::Cli,
            format!("{me} records its host key, serial, peer address and versions"),
        );
        Ok(Some(self.propose(writes, base, meta, wall_ms)?))
    }

    /// Marks `machine` disconnected (or connected again), as a change set.
    pub fn set_disconnected(
        &mut self,
        caller: &Caller,
        machine: &MachineName,
        disconnected: bool,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let live = self.store.live_under(&["@machine:".into()])?;
        let Some(m) = membership_of(&live, machine) else {
            return Err(invalid(
                format!("{machine} is not a member of the cluster"),
                Some("`strata cluster list` shows the machines"),
            ));
        };
        if m.disconnected == disconnected {
            return Ok(None);
        }
        let mut changed = m.clone();
        changed.disconnected = disconnected;
        let key = Key::Machine(machine.clone());
        let mut writes = Writes::new();
        writes.insert(key.clone(), Some(EntryValue::Machine(changed)));
        let base = base_of(&live, writes.keys());
        let verb = if disconnected {
            "disconnect"
        } else {
            "reconnect"
        };
        let meta = self.meta(
            caller,
            &caller.user,
            Source::Cli,
            format!("{verb} {machine}"),
        );
        Ok(Some(self.propose(writes, base, meta, wall_ms)?))
    }

    /// Removes `machine` from the cluster: its membership and its machine-level sections
    /// are deleted everywhere, so the others forget it (and refuse its key).
    pub fn remove_member(
        &mut self,
        caller: &Caller,
        machine: &MachineName,
        wall_ms: u64,
    ) -> Result<ChangeSet, Refusal> {
        let live = self
            .store
            .live_under(&["@machine:".into(), format!("machine:{machine}/")])?;
        if membership_of(&live, machine).is_none() {
            return Err(invalid(
                format!("{machine} is not a member of the cluster"),
                Some("`strata cluster list` shows the machines"),
            ));
        }
        let mine = Mode::Machine(machine.clone());
        let writes: Writes = live
            .iter()
            .filter(|(k, e)| {
                e.value.is_some()
                    && match k {
                        Key::Machine(m) => m == machine,
                        Key::Section { mode, .. } => *mode == mine,
                        _ => false,
                    }
            })
            .map(|(k, _)| (k.clone(), None))
            .collect();
        let base = base_of(&live, writes.keys());
        let meta = self.meta(
            caller,
            &caller.user,
            Source::Cli,
            format!("remove {machine}"),
        );
        Ok(self.propose(writes, base, meta, wall_ms)?)
    }

    /// Leaves the cluster for good: the store is replaced by one change set of
    /// standalone settings, `flattened` (this machine's effective config before it
    /// left).
    pub fn leave(&mut self, flattened: Vec<Node>, wall_ms: u64) -> Result<ChangeSet, Refusal> {
        self.replace(Vec::new())?;
        let mode = Mode::Machine(self.machine.clone());
        let mut writes = Writes::new();
        for n in flattened {
            let name = SectionName::new(&n.name).map_err(|e| invalid(e.to_string(), None))?;
            writes.insert(
                Key::section(mode.clone(), name),
                Some(EntryValue::Section(n)),
            );
        }
        let base = writes.keys().map(|k| (k.clone(), None)).collect();
        let meta = self.meta(
            &agent_caller(),
            "agent",
            Source::Cli,
            "left the cluster: flattened config kept as standalone settings".into(),
        );
        Ok(self.propose(writes, base, meta, wall_ms)?)
    }
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
