//! Renaming a member, as the seed's FAQ on changing a machine's hostname wants it done
//! but without leaving the cluster: one change set moves the machine's membership and
//! its machine-level sections to the new name, so it keeps its settings, its group, its
//! place in the mesh and its history.
//!
//! A member is its host key, not its name. Every agent that merges the change set finds
//! the key under the new name; the renamed machine's own agent, instead of taking the
//! deletion of its old membership for a removal ([`renames`]), runs its config under the
//! new name at once and takes the name for good by restarting ([`renamed_to`], which the
//! agent also asks at every start, so a crash in between changes nothing).

use russh::keys::PublicKey;

use super::caller::{Caller, Refusal, invalid};
use super::core::Core;
use super::membership::membership_of;
use crate::model::{EntryValue, Key, MachineName, Membership, Mode, Node, Value};
use crate::state::{ChangeSet, Live, Store, Writes};

impl<S: Store> Core<S> {
    /// Renames member `from` to `to` (at `address`, if given; else where it was): its
    /// membership and every section at its machine level move to the new name.
    /// `Ok(None)`: it has that name already.
    pub fn rename_member(
        &mut self,
        caller: &Caller,
        from: &MachineName,
        to: &MachineName,
        address: Option<&str>,
        wall_ms: u64,
    ) -> Result<Option<ChangeSet>, Refusal> {
        let view = self.admin_view(&[format!("machine:{from}/")])?;
        let Some(member) = membership_of(&view, from) else {
            if membership_of(&view, to).is_some() {
                return Ok(None);
            }
            return Err(invalid(
                format!("`{from}` is not a member of the cluster"),
                Some("`strata cluster list` shows the machines"),
            ));
        };
        if from == to && address.is_none_or(|a| a == member.address) {
            return Ok(None);
        }
        if from != to && view.contains_key(&Key::Machine(to.clone())) {
            return Err(invalid(
                format!("`{to}` is a member of the cluster already"),
                Some("pick another name, or remove that member first"),
            ));
        }
        if view.contains_key(&Key::Pending(to.clone())) {
            return Err(invalid(
                format!("`{to}` is registered to join (`cluster prepjoin list`)"),
                Some("delete the registration first: `strata cluster prepjoin delete NAME`"),
            ));
        }
        let renamed_address = |a: Option<&str>| a.unwrap_or_default().to_owned();
        let renamed = Membership {
            address: address.map_or_else(|| member.address.clone(), str::to_owned),
            ..member.clone()
        };
        let mut writes = Writes::new();
        if from != to {
            writes.insert(Key::Machine(from.clone()), None);
        }
        writes.insert(Key::Machine(to.clone()), Some(EntryValue::Machine(renamed)));
        let (old, new) = (Mode::Machine(from.clone()), Mode::Machine(to.clone()));
        let mut moved = Vec::new();
        for (key, entry) in &view {
            if let (Key::Section { mode, section }, Some(value)) = (key, &entry.value)
                && *mode == old
                && from != to
            {
                writes.insert(key.clone(), None);
                let value = match value {
                    EntryValue::Section(node) if section.as_str() == "hostname" => {
                        EntryValue::Section(hostname_renamed(node, from, to))
                    }
                    other => other.clone(),
                };
                writes.insert(Key::section(new.clone(), section.clone()), Some(value));
                moved.push(section.to_string());
            }
        }
        let message = if from == to {
            format!(
                "cluster renamemachine {from} {to} --address {}",
                renamed_address(address)
            )
        } else {
            format!(
                "cluster renamemachine {from} {to} (sections: {})",
                if moved.is_empty() {
                    "none".to_owned()
                } else {
                    moved.join(", ")
                }
            )
        };
        self.commit_admin(caller, writes, &view, message, wall_ms)
    }
}

/// A `hostname` section that named the machine by its old name names it by the new
/// one (the seed's point in renaming: a new main hostname); any other hostname stays.
fn hostname_renamed(node: &Node, from: &MachineName, to: &MachineName) -> Node {
    let canonical = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    let mut node = node.clone();
    if let Some(first) = node.args.first_mut()
        && first
            .as_str()
            .is_some_and(|h| canonical(h) == canonical(from.as_str()))
    {
        *first = Value::String(to.to_string());
    }
    node
}

/// Whether two OpenSSH public-key lines (or a line and a key) are the same key.
fn same_key(line: Option<&str>, key: &PublicKey) -> bool {
    line.and_then(|l| PublicKey::from_openssh(l).ok())
        .is_some_and(|k| k.key_data() == key.key_data())
}

/// The name `live` gives the machine whose host key is `key`, when that is no longer
/// `me`: this machine was renamed. `None` while `me` is a member (or no member has the
/// key: it was removed, or never joined).
pub fn renamed_to(live: &Live, me: &MachineName, key: &PublicKey) -> Option<MachineName> {
    if membership_of(live, me).is_some() {
        return None;
    }
    live.iter().find_map(|(k, e)| match (k, &e.value) {
        (Key::Machine(m), Some(EntryValue::Machine(info)))
            if same_key(info.host_key.as_deref(), key) =>
        {
            Some(m.clone())
        }
        _ => None,
    })
}

/// The new name `change_set` gives the machine whose host key is `key`, if it writes its
/// membership under another name than `me`: a rename, not a removal, though it deletes
/// `me`'s membership.
pub fn renames(change_set: &ChangeSet, me: &MachineName, key: &PublicKey) -> Option<MachineName> {
    change_set.writes.iter().find_map(|(k, v)| match (k, v) {
        (Key::Machine(m), Some(EntryValue::Machine(info)))
            if m != me && same_key(info.host_key.as_deref(), key) =>
        {
            Some(m.clone())
        }
        _ => None,
    })
}
