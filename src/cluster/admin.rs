//! Administering a cluster, over any [`Store`]: the admin passphrase, the cluster's name,
//! its groups and which machines are in them (clusterconfig's SETNAME, ADDGROUP,
//! SETGROUP, RENAMEGROUP, DELETEGROUP), and the machines registered to join with their
//! host key (PREPJOIN). Each operation is one change set, checked by
//! [`check_writes`] as every write is, and only administrators may make it. Passphrases
//! arrive here already hashed: the core never sees one.

use super::authorize::{check_authority, check_writes};
use super::caller::{Caller, Refusal, invalid};
use super::core::{Core, base_of};
use crate::model::{
    EntryValue, GroupName, MachineName, Membership, Mode, Node, PendingJoin, SectionName, Value,
};
use crate::plan::ownership::PASSPHRASE_HASH;
use crate::protocol::status::PendingEntry;
use crate::state::{ChangeSet, Key, Live, Source, Store, StoreError, Writes};

/// The cluster admin's login name, as AsyncOS names it.
pub const ADMIN_USER: &str = "admin";

impl<S: Store> Core<S> {
    /// The membership and catalogue entries, and the live entries under `extra` prefixes:
    /// what an administrative operation reads, and what its writes are checked against.
    pub(super) fn admin_view(&self, extra: &[String]) -> Result<Live, StoreError> {
        let mut prefixes = vec!["@".to_owned(), "#".to_owned()];
        prefixes.extend_from_slice(extra);
        self.store.live_under(&prefixes)
    }

    /// Commits `writes` made on the command line (`message` says what was done), checked
    /// against `view` as an apply is; `Ok(None)`: nothing to write.
    pub(super) fn commit_admin(
        &mut self,
        caller: &Caller,
        writes: Writes,
        view: &Live,
        message: String,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        check_authority(&writes, caller.authority)?;
        if writes.is_empty() {
            return Ok(None);
        }
        super::guard::check(caller, &writes, view, &Source::Cli)?;
        let frozen = self.open_freeze(wall_ms)?;
        super::guard::check_freeze(caller, &writes, view, frozen.as_ref())?;
        check_writes(&writes, view, &self.machine)?;
        let base = base_of(view, writes.keys());
        let meta = self.meta(caller, &caller.user, Source::Cli, message);
        Ok(Some(self.propose(writes, base, meta, wall_ms)?))
    }

    /// Sets the passphrase of `user` in the cluster's `users` section to `hash` (an
    /// argon2id PHC string), keeping every other user and the user's keys and role. The
    /// administrator [`ADMIN_USER`] is added (with the section) if missing, as AsyncOS
    /// always has it; any other user must be declared already — git owns who the users
    /// are and their roles, the cluster owns the hashes set here.
    pub fn cluster_passwd(
        &mut self,
        caller: &Caller,
        user: &str,
        hash: &str,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let section = SectionName::new("users").map_err(|e| invalid(e.to_string(), None))?;
        let key = Key::section(Mode::Cluster, section);
        let view = self.admin_view(&[key.to_string()])?;
        cluster_name(&view)?;
        let mut users = match view.get(&key).and_then(|e| e.value.as_ref()) {
            Some(EntryValue::Section(node)) => node.clone(),
            _ => Node::new("users"),
        };
        set_hash(&mut users, user, hash)?;
        let writes = Writes::from([(key, Some(EntryValue::Section(users)))]);
        let message = if user == ADMIN_USER {
            "cluster passwd".to_owned()
        } else {
            format!("cluster passwd {user}")
        };
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }

    /// Renames the cluster.
    pub fn set_name(
        &mut self,
        caller: &Caller,
        name: &str,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        if name.trim().is_empty() {
            return Err(invalid(
                "the cluster needs a name",
                Some("strata cluster setname NAME"),
            ));
        }
        if name.trim() != name {
            return Err(invalid(
                format!("the cluster name `{name}` has spaces around it"),
                Some("give the name without leading or trailing spaces"),
            ));
        }
        let view = self.admin_view(&[])?;
        let old = cluster_name(&view)?;
        if old == name {
            return Ok(None);
        }
        let writes = Writes::from([(
            Key::Cluster,
            Some(EntryValue::Cluster {
                name: name.to_owned(),
            }),
        )]);
        let message = format!("cluster setname {name} (was {old})");
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }

    /// Adds a group with no machines and no sections of its own.
    pub fn add_group(
        &mut self,
        caller: &Caller,
        name: &GroupName,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.admin_view(&[])?;
        cluster_name(&view)?;
        if groups(&view).contains(name) {
            return Err(invalid(
                format!("group `{name}` already exists"),
                Some("pick another name; `strata plan` shows the groups the agent has"),
            ));
        }
        let writes = Writes::from([(Key::Group(name.clone()), Some(EntryValue::Group))]);
        self.commit_admin(
            caller,
            writes,
            &view,
            format!("cluster addgroup {name}"),
            wall_ms,
        )
    }

    /// Moves `machine` to `group`, keeping everything else its membership records.
    pub fn set_group(
        &mut self,
        caller: &Caller,
        machine: &MachineName,
        group: &GroupName,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.admin_view(&[])?;
        cluster_name(&view)?;
        let members = members(&view);
        let Some((_, current)) = members.iter().find(|(m, _)| m == machine) else {
            return Err(invalid(
                format!("`{machine}` is not a member of the cluster"),
                Some(&format!(
                    "the members are: {}",
                    names(members.iter().map(|(m, _)| m))
                )),
            ));
        };
        known_group(&view, group)?;
        if current.group == *group {
            return Ok(None);
        }
        let message = format!("cluster setgroup {machine} {group} (was {})", current.group);
        let moved = Membership {
            group: group.clone(),
            ..current.clone()
        };
        let writes = Writes::from([(
            Key::Machine(machine.clone()),
            Some(EntryValue::Machine(moved)),
        )]);
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }

    /// Renames group `from` to `to`: its machines and the sections it defines go with it,
    /// in one change set.
    pub fn rename_group(
        &mut self,
        caller: &Caller,
        from: &GroupName,
        to: &GroupName,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.admin_view(&[group_prefix(from)])?;
        cluster_name(&view)?;
        known_group(&view, from)?;
        if groups(&view).contains(to) {
            return Err(invalid(
                format!("group `{to}` already exists"),
                Some("pick another name, or move the machines with `strata cluster setgroup`"),
            ));
        }
        let mut writes = Writes::from([
            (Key::Group(from.clone()), None),
            (Key::Group(to.clone()), Some(EntryValue::Group)),
        ]);
        let moved = move_machines(&view, from, to, &mut writes);
        let sections = group_sections(&view, from);
        for (section, value) in &sections {
            writes.insert(
                Key::section(Mode::Group(to.clone()), section.clone()),
                Some(value.clone()),
            );
            writes.insert(
                Key::section(Mode::Group(from.clone()), section.clone()),
                None,
            );
        }
        let message = format!(
            "cluster renamegroup {from} {to} (machines: {}; sections: {})",
            names(moved.iter()),
            names(sections.iter().map(|(s, _)| s))
        );
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }

    /// Deletes group `name` and the sections it defines; its machines move to `move_to`,
    /// which they need if there are any. The last group is never deleted.
    pub fn delete_group(
        &mut self,
        caller: &Caller,
        name: &GroupName,
        move_to: Option<&GroupName>,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.admin_view(&[group_prefix(name)])?;
        cluster_name(&view)?;
        known_group(&view, name)?;
        if groups(&view).len() == 1 {
            return Err(invalid(
                format!("`{name}` is the cluster's only group, and a cluster needs at least one"),
                Some("add another group first with `strata cluster addgroup GROUP`"),
            ));
        }
        let inside: Vec<MachineName> = members(&view)
            .into_iter()
            .filter(|(_, m)| m.group == *name)
            .map(|(n, _)| n)
            .collect();
        let mut writes = Writes::from([(Key::Group(name.clone()), None)]);
        let mut message = format!("cluster deletegroup {name}");
        match move_to {
            Some(to) if to == name => {
                return Err(invalid(
                    format!("cannot move the machines of `{name}` to `{name}` itself"),
                    Some("give --move-to another group"),
                ));
            }
            Some(to) => {
                known_group(&view, to)?;
                let moved = move_machines(&view, name, to, &mut writes);
                message.push_str(&format!(
                    " (machines moved to {to}: {}",
                    names(moved.iter())
                ));
            }
            None if !inside.is_empty() => {
                return Err(invalid(
                    format!(
                        "group `{name}` still has machines: {}",
                        names(inside.iter())
                    ),
                    Some(
                        "say where they go with --move-to GROUP, or move them first with `strata cluster setgroup`",
                    ),
                ));
            }
            None => message.push_str(" (machines moved: none"),
        }
        let sections = group_sections(&view, name);
        for (section, _) in &sections {
            writes.insert(
                Key::section(Mode::Group(name.clone()), section.clone()),
                None,
            );
        }
        message.push_str(&format!(
            "; sections removed: {})",
            names(sections.iter().map(|(s, _)| s))
        ));
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }

    /// Registers `host` to join with its host key `key` (an OpenSSH public-key line) and
    /// serial number, instead of the admin passphrase.
    pub fn prepjoin_add(
        &mut self,
        caller: &Caller,
        host: &MachineName,
        serial: &str,
        key: &str,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.admin_view(&[])?;
        cluster_name(&view)?;
        let (serial, key) = (serial.trim(), key.trim());
        if serial.is_empty() {
            return Err(invalid(
                format!("no serial number for {host}"),
                Some(
                    "give the serial number `strata cluster prepjoin print` shows on that machine",
                ),
            ));
        }
        if let Err(e) = russh::keys::PublicKey::from_openssh(key) {
            return Err(invalid(
                format!("the key for {host} is not an OpenSSH public key: {e}"),
                Some(
                    "give the machine's host key line (`ssh-ed25519 AAAA…`), as `strata cluster prepjoin print` shows it there",
                ),
            ));
        }
        if members(&view)
            .iter()
            .any(|(m, info)| m == host && info.joined())
        {
            return Err(invalid(
                format!("{host} is already a member of the cluster"),
                Some("only machines that have not joined yet are registered to join"),
            ));
        }
        let entry = EntryValue::Pending(PendingJoin {
            serial: serial.to_owned(),
            host_key: key.to_owned(),
        });
        let pending = Key::Pending(host.clone());
        if view.get(&pending).and_then(|e| e.value.as_ref()) == Some(&entry) {
            return Ok(None);
        }
        let writes = Writes::from([(pending, Some(entry))]);
        let message = format!("cluster prepjoin add {host}");
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }

    /// Forgets a machine registered to join.
    pub fn prepjoin_delete(
        &mut self,
        caller: &Caller,
        host: &MachineName,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.admin_view(&[])?;
        let pending = Key::Pending(host.clone());
        if view.get(&pending).is_none_or(|e| e.value.is_none()) {
            return Err(invalid(
                format!("{host} is not registered to join"),
                Some("`strata cluster prepjoin list` lists the machines that are"),
            ));
        }
        let writes = Writes::from([(pending, None)]);
        let message = format!("cluster prepjoin delete {host}");
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }

    /// The machines registered to join, sorted by name.
    pub fn prepjoin_list(&self) -> Result<Vec<PendingEntry>, StoreError> {
        let mut entries: Vec<PendingEntry> = self
            .store
            .live_under(&["@prepjoin:".to_owned()])?
            .iter()
            .filter_map(|(k, e)| match (k, &e.value) {
                (Key::Pending(host), Some(EntryValue::Pending(p))) => Some(PendingEntry {
                    host: host.to_string(),
                    serial: p.serial.clone(),
                    key: p.host_key.clone(),
                }),
                _ => None,
            })
            .collect();
        entries.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(entries)
    }
}

/// The cluster's name; refused on a standalone machine.
fn cluster_name(view: &Live) -> Result<String, Refusal> {
    match view.get(&Key::Cluster).and_then(|e| e.value.as_ref()) {
        Some(EntryValue::Cluster { name }) => Ok(name.clone()),
        _ => Err(invalid(
            "this machine is not in a cluster",
            Some("create one with `strata cluster create NAME`"),
        )),
    }
}

/// The live groups, sorted.
fn groups(view: &Live) -> Vec<GroupName> {
    view.iter()
        .filter_map(|(k, e)| match (k, &e.value) {
            (Key::Group(g), Some(_)) => Some(g.clone()),
            _ => None,
        })
        .collect()
}

/// Refuses a group the cluster does not have, naming those it has.
fn known_group(view: &Live, group: &GroupName) -> Result<(), Refusal> {
    let all = groups(view);
    if all.contains(group) {
        return Ok(());
    }
    Err(invalid(
        format!("the cluster has no group `{group}`"),
        Some(&format!(
            "its groups are: {}; add one with `strata cluster addgroup {group}`",
            names(all.iter())
        )),
    ))
}

/// The live members and their membership, sorted by name.
fn members(view: &Live) -> Vec<(MachineName, Membership)> {
    view.iter()
        .filter_map(|(k, e)| match (k, &e.value) {
            (Key::Machine(m), Some(EntryValue::Machine(info))) => Some((m.clone(), info.clone())),
            _ => None,
        })
        .collect()
}

/// Writes every machine of group `from` into group `to`, keeping the rest of its
/// membership; returns their names.
fn move_machines(
    view: &Live,
    from: &GroupName,
    to: &GroupName,
    writes: &mut Writes,
) -> Vec<MachineName> {
    let mut moved = Vec::new();
    for (name, info) in members(view).into_iter().filter(|(_, m)| m.group == *from) {
        let info = Membership {
            group: to.clone(),
            ..info
        };
        writes.insert(Key::Machine(name.clone()), Some(EntryValue::Machine(info)));
        moved.push(name);
    }
    moved
}

/// The prefix of the keys of the sections group `group` defines.
fn group_prefix(group: &GroupName) -> String {
    format!("{}/", Mode::Group(group.clone()))
}

/// The sections group `group` defines, with their values, sorted by name.
fn group_sections(view: &Live, group: &GroupName) -> Vec<(SectionName, EntryValue)> {
    view.iter()
        .filter_map(|(k, e)| match (k, &e.value) {
            (
                Key::Section {
                    mode: Mode::Group(g),
                    section,
                },
                Some(v),
            ) if g == group => Some((section.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

/// Names for a message: `a, b`, or `none`.
fn names<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let all: Vec<String> = items.map(|i| i.to_string()).collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

/// Gives `user` of a `users` section node the passphrase hash `hash`. The administrator
/// [`ADMIN_USER`] is added (named as the factory default names it) if the section has
/// none, and always has the administrator role; another user the section does not
/// declare is refused.
fn set_hash(users: &mut Node, user: &str, hash: &str) -> Result<(), Refusal> {
    let found = users
        .children
        .iter()
        .position(|u| u.name == "user" && u.args.first().and_then(Value::as_str) == Some(user));
    let at = match found {
        Some(at) => at,
        None if user == ADMIN_USER => {
            let mut admin = Node::new("user");
            admin.args.push(Value::String(ADMIN_USER.to_owned()));
            admin.set_prop("full-name", Value::String("Administrator".into()));
            users.children.push(admin);
            users.children.len() - 1
        }
        None => {
            return Err(invalid(
                format!("user `{user}` is not in the cluster's users section"),
                Some(&format!(
                    "git owns who the users are and their roles: add `user \"{user}\" role=\"operator\"` (or another role) to the repo's users section, apply it, then set the passphrase"
                )),
            ));
        }
    };
    let found = &mut users.children[at];
    if user == ADMIN_USER {
        // AsyncOS's admin is always an administrator.
        found.set_prop("role", Value::String("administrator".into()));
    }
    found.set_prop(PASSPHRASE_HASH, Value::String(hash.to_owned()));
    Ok(())
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
