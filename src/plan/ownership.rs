//! Who owns what: git or the cluster. Two kinds of writer touch the same store — the
//! config repo (`git push`, `apply`, the repo follower) and the imperative commands
//! (`strata cluster …`) — and this module is the rule between them, pure and in one place.
//!
//! | owner   | what |
//! |---------|------|
//! | git     | sections at every mode; the cluster's name; groups; a machine's group, and its address and serial when the repo gives them; users with their roles and keys; the catalogue |
//! | cluster | what a machine proves or a member sets: host keys, the address a member joined with and the one the mesh dials (`peer`) when the repo gives none, serials the repo does not give, join and disconnect state, the Strata and appliance versions a member's agent reports, the pending-join list, and passphrase hashes set on a member (`cluster passwd`) unless the repo sets one |
//!
//! A repo apply never removes or rewrites cluster-owned state it does not mention
//! ([`over_live`], [`without_repo`]); a repo that does set a passphrase hash wins, and the
//! plan says so ([`replaced_hashes`]). While a follower in mode apply keeps the cluster at a
//! branch, the agent refuses imperative writes whose repo-owned part changes
//! ([`repo_part`]) and lets the others through.

use crate::model::{EntryValue, Key, Node, Value};
use crate::schema::Catalogue;

/// The property of a `users` entry that holds its argon2 passphrase hash.
pub const PASSPHRASE_HASH: &str = "passphrase-hash";

/// The section whose passphrase hashes the cluster owns.
const USERS: &str = "users";

fn is_users(key: &Key) -> bool {
    matches!(key, Key::Section { section, .. } if section.as_str() == USERS)
}

/// The value that applying a repo's `declared` value for `key` writes over `live`: what
/// the repo says, with what the cluster owns and the repo does not mention taken from
/// `live` — a member's host key, peer address, serial, disconnected state and the
/// versions its agent reports; the passphrase hashes of the users the repo declares
/// without one.
pub fn over_live(key: &Key, declared: &EntryValue, live: Option<&EntryValue>) -> EntryValue {
    match (declared, live) {
        (EntryValue::Machine(d), Some(EntryValue::Machine(l))) => {
            let mut kept = d.clone().with_mesh_facts_of(l);
            kept.was = None;
            // A repo that gives no `address=` declares the machine's name as its address:
            // a member keeps the address it joined (or created the cluster) with.
            if let Key::Machine(name) = key
                && d.address == name.as_str()
            {
                kept.address = l.address.clone();
            }
            EntryValue::Machine(kept)
        }
        (EntryValue::Section(d), Some(EntryValue::Section(l))) if is_users(key) => {
            EntryValue::Section(with_hashes_of(d, l))
        }
        (EntryValue::Machine(d), _) if d.was.is_some() => {
            let mut kept = d.clone();
            kept.was = None;
            EntryValue::Machine(kept)
        }
        _ => declared.clone(),
    }
}

/// The live entry that applying `declared` for `key` writes over: the key's own, or, for
/// a machine the repo renamed (`was="OLD"`) that has no entry under its new name yet, the
/// old name's — so the member keeps its host key and the rest under the new name
/// ([`crate::cluster::rename`]).
pub fn live_under_rename<'a>(
    key: &Key,
    declared: &EntryValue,
    live: impl Fn(&Key) -> Option<&'a EntryValue>,
) -> Option<&'a EntryValue> {
    live(key).or_else(|| match declared {
        EntryValue::Machine(d) => d
            .was
            .as_ref()
            .and_then(|was| live(&Key::Machine((**was).clone()))),
        _ => None,
    })
}

/// What applying a repo that does not declare `key` leaves of `live`: `None` removes the
/// entry; a value keeps what the cluster owns. A `users` section the repo leaves out is
/// the factory default's users, keeping the passphrase hashes set on the cluster — so a
/// repo that never mentions users does not lock the administrator out.
pub fn without_repo(key: &Key, live: &EntryValue, catalogue: &Catalogue) -> Option<EntryValue> {
    let (EntryValue::Section(live), true) = (live, is_users(key)) else {
        return None;
    };
    let default = &catalogue.get(USERS)?.default;
    let kept = with_hashes_of(default, live);
    (kept != *default).then_some(EntryValue::Section(kept))
}

/// The part of `value` a repo owns: two values whose parts are equal differ only in what
/// the cluster owns. `None` stays `None` (no entry).
pub fn repo_part(key: &Key, value: Option<&EntryValue>) -> Option<EntryValue> {
    Some(match value? {
        EntryValue::Machine(m) => {
            let mut m = m.clone();
            m.host_key = None;
            m.peer = None;
            m.serial = None;
            m.disconnected = false;
            m.strata_version = None;
            m.appliance_version = None;
            EntryValue::Machine(m)
        }
        EntryValue::Section(n) if is_users(key) => {
            let mut n = n.clone();
            for user in &mut n.children {
                user.props.retain(|(k, _)| k != PASSPHRASE_HASH);
                user.prop_spans.clear();
            }
            EntryValue::Section(n)
        }
        other => other.clone(),
    })
}

/// The users whose passphrase hash set on the cluster a repo's `users` (`new`) replaces
/// with one of its own, from `old`, the live section.
pub fn replaced_hashes(old: &Node, new: &Node) -> Vec<String> {
    users(new)
        .filter_map(|(name, user)| {
            let theirs = user.prop(PASSPHRASE_HASH)?;
            let ours = old.child_named("user", name)?.prop(PASSPHRASE_HASH)?;
            (ours != theirs).then(|| name.to_owned())
        })
        .collect()
}

/// True when some administrator of a `users` section can log in: not locked, with a
/// passphrase hash or a key.
pub fn has_admin_credential(users_section: Option<&Node>) -> bool {
    users_section.is_some_and(|n| {
        users(n).any(|(_, u)| {
            u.prop("role").and_then(Value::as_str) == Some("administrator")
                && u.prop("locked") != Some(&Value::Bool(true))
                && (u.prop(PASSPHRASE_HASH).is_some() || u.children.iter().any(|k| k.name == "key"))
        })
    })
}

fn users(section: &Node) -> impl Iterator<Item = (&str, &Node)> {
    section
        .children
        .iter()
        .filter(|u| u.name == "user")
        .filter_map(|u| Some((u.args.first()?.as_str()?, u)))
}

/// `declared` with the passphrase hash of each of its users that has none taken from the
/// same user in `live`.
fn with_hashes_of(declared: &Node, live: &Node) -> Node {
    let mut out = declared.clone();
    for user in out.children.iter_mut().filter(|u| u.name == "user") {
        if user.prop(PASSPHRASE_HASH).is_some() {
            continue;
        }
        let Some(name) = user.args.first().and_then(Value::as_str) else {
            continue;
        };
        if let Some(hash) = live
            .child_named("user", name)
            .and_then(|u| u.prop(PASSPHRASE_HASH))
        {
            let hash = hash.clone();
            user.set_prop(PASSPHRASE_HASH, hash);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        let doc: kdl::KdlDocument = text.parse().unwrap();
        Node::from_kdl(&doc.nodes()[0])
    }

    fn users_key() -> Key {
        "cluster/users".parse().unwrap()
    }

    #[test]
    fn a_repo_without_hashes_keeps_the_ones_set_on_the_cluster() {
        let live = node(
            r#"users { user "admin" role="administrator" passphrase-hash="$argon2id$h1"; user "ops" role="operator" passphrase-hash="$argon2id$h2" }"#,
        );
        let declared = node(
            r#"users { user "admin" role="administrator"; user "ops" role="read-only" passphrase-hash="$argon2id$mine"; user "new" role="operator" }"#,
        );
        let EntryValue::Section(after) = over_live(
            &users_key(),
            &EntryValue::Section(declared.clone()),
            Some(&EntryValue::Section(live.clone())),
        ) else {
            panic!("a section stays a section")
        };
        let hash = |n: &Node, u: &str| {
            n.child_named("user", u)
                .and_then(|u| u.prop(PASSPHRASE_HASH))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        assert_eq!(hash(&after, "admin").as_deref(), Some("$argon2id$h1"));
        assert_eq!(
            hash(&after, "ops").as_deref(),
            Some("$argon2id$mine"),
            "the repo's wins"
        );
        assert_eq!(hash(&after, "new"), None);
        assert_eq!(
            after.child_named("user", "ops").unwrap().prop("role"),
            Some(&Value::String("read-only".into())),
            "roles are the repo's"
        );
        assert_eq!(replaced_hashes(&live, &after), ["ops"]);
        // What differs only in hashes has the same repo part.
        let k = users_key();
        assert_eq!(
            repo_part(&k, Some(&EntryValue::Section(after.clone()))),
            repo_part(&k, Some(&EntryValue::Section(declared)))
        );
    }

    #[test]
    fn a_repo_that_leaves_users_out_keeps_the_admin_hash_and_drops_other_users() {
        let cat = Catalogue::builtin();
        let live = EntryValue::Section(node(
            r#"users { user "admin" full-name="Administrator" role="administrator" passphrase-hash="$argon2id$h1"; user "ops" role="operator" passphrase-hash="$argon2id$h2" }"#,
        ));
        let Some(EntryValue::Section(kept)) = without_repo(&users_key(), &live, &cat) else {
            panic!("the admin's hash is the cluster's")
        };
        assert!(kept.child_named("user", "ops").is_none());
        assert!(has_admin_credential(Some(&kept)));
        let no_hash = EntryValue::Section(node(r#"users { user "admin" role="administrator" }"#));
        assert_eq!(without_repo(&users_key(), &no_hash, &cat), None);
        let dns: Key = "cluster/dns".parse().unwrap();
        assert_eq!(
            without_repo(&dns, &EntryValue::Section(node("dns")), &cat),
            None
        );
    }

    #[test]
    fn an_administrator_credential_is_a_hash_or_a_key_on_an_unlocked_administrator() {
        let has = |t: &str| has_admin_credential(Some(&node(t)));
        assert!(has(
            r#"users { user "a" role="administrator" passphrase-hash="x" }"#
        ));
        assert!(has(
            r#"users { user "a" role="administrator" { key "ssh-ed25519 AAAA"; } }"#
        ));
        assert!(!has(r#"users { user "a" role="administrator" }"#));
        assert!(!has(
            r#"users { user "a" role="operator" passphrase-hash="x" }"#
        ));
        assert!(!has(
            r#"users { user "a" role="administrator" locked=#true passphrase-hash="x" }"#
        ));
        assert!(!has_admin_credential(None));
    }

    #[test]
    fn membership_facts_of_the_mesh_are_not_the_repo_s() {
        let k: Key = "@machine:lab1".parse().unwrap();
        let joined = crate::config::value_from_text(
            &k,
            r#"machine lab1 address="10.0.0.1" group=Main_Group host-key="ssh-ed25519 AAAA" peer="10.0.0.1:2222" serial="S1" disconnected="true" declared="true" strata-version="0.2.0" appliance-version="15.0.1-416""#,
        )
        .unwrap();
        let declared = crate::config::value_from_text(
            &k,
            r#"machine lab1 address="10.0.0.1" group=Main_Group declared="true""#,
        )
        .unwrap();
        assert_eq!(over_live(&k, &declared, Some(&joined)), joined);
        assert_eq!(repo_part(&k, Some(&joined)), repo_part(&k, Some(&declared)));
        let moved = crate::config::value_from_text(
            &k,
            r#"machine lab1 address="10.0.0.1" group=Paris declared="true""#,
        )
        .unwrap();
        assert_ne!(repo_part(&k, Some(&moved)), repo_part(&k, Some(&declared)));
    }
}
