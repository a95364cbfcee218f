//! Planning by digest: what an agent's live entries look like when only their digests
//! travel ([`Digests`]), which of them a plan must fetch ([`compare`]), and the plan
//! computed from those alone ([`diff_fetched`]), equal to [`super::diff`] against every
//! live entry.
//!
//! A plan reads a live value only where it differs from the desired one: an equal value
//! makes no action and, as the live value is the desired one, the desired value stands
//! in for it when the plan resolves machines' effective configs. So the CLI asks the
//! agent for the digest ([`EntryValue::digest`]) of every live entry, digests the
//! desired entries with the same function, and fetches only the entries whose digests
//! differ, the tombstones of desired keys (their versions are the plan's base) and the
//! live values the repo no longer declares.

use std::collections::{BTreeMap, BTreeSet};

use super::{Entries, Origin, Plan, plan_against};
use crate::model::{EntryDigest, EntryValue, Key};
use crate::schema::Catalogue;
use crate::state::Live;

/// An agent's live entries as digests, by key (`None`: a tombstone).
pub type Digests = BTreeMap<Key, Option<EntryDigest>>;

/// The digests of `live`.
pub fn digests_of(live: &Live) -> Digests {
    live.iter()
        .map(|(k, e)| (k.clone(), e.value.as_ref().map(EntryValue::digest)))
        .collect()
}

/// What the digests of the live entries say against the desired entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestDiff {
    /// The keys whose live entries the plan must see, in key order: desired keys whose
    /// live digest differs or that are tombstones, and live values the repo does not
    /// declare.
    pub fetch: Vec<Key>,
    /// Desired keys whose live value is the desired one.
    pub same: BTreeSet<Key>,
}

/// Compares the desired entries with the digests of the live ones.
pub fn compare(desired: &Entries, live: &Digests) -> DigestDiff {
    let mut out = DigestDiff::default();
    for (key, value) in desired {
        match live.get(key) {
            // Not live: a creation, with no version to base it on.
            None => {}
            Some(Some(d)) if *d == value.digest() => {
                out.same.insert(key.clone());
            }
            Some(_) => out.fetch.push(key.clone()),
        }
    }
    // Tombstones the repo does not declare make no action and resolve to nothing.
    out.fetch.extend(
        live.iter()
            .filter(|(k, d)| d.is_some() && !desired.contains_key(*k))
            .map(|(k, _)| k.clone()),
    );
    out.fetch.sort();
    out
}

/// Plans `desired` (validated with `catalogue`) against the live entries that `found`
/// describes, given the entries of `found.fetch` (as the agent answered them): the plan
/// [`super::diff`] makes against every live entry.
pub fn diff_fetched(
    desired: &Entries,
    catalogue: &Catalogue,
    found: &DigestDiff,
    fetched: &Live,
    origin: Origin,
) -> Plan {
    let mut live_values: BTreeMap<&Key, &EntryValue> = fetched
        .iter()
        .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v)))
        .collect();
    for key in &found.same {
        if let Some((k, v)) = desired.get_key_value(key) {
            live_values.insert(k, v);
        }
    }
    plan_against(desired, catalogue, live_values, fetched, origin)
}

/// The keys of `wanted` that `fetched` lacks or holds with another digest than `live`
/// gave: entries that changed between the two answers, so the plan must ask again.
pub fn changed_since(live: &Digests, wanted: &[Key], fetched: &Live) -> Vec<Key> {
    wanted
        .iter()
        .filter(|k| {
            let now = fetched
                .get(*k)
                .map(|e| e.value.as_ref().map(EntryValue::digest));
            now.as_ref() != live.get(*k)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeMeta, Source};
    use crate::plan::tests::{V1, apply, entries, origin};
    use crate::state::{MemoryStore, Proposal, Store};

    /// V1 with the cluster's dns changed, ntp removed, Paris's ldap-queries added.
    const V2: &str = r#"
cluster "americas" { dns { server "10.0.0.99"; } }
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; }; ldap-queries }
machine "lab1"
machine "lab3" group="Paris"
"#;

    fn key(text: &str) -> Key {
        text.parse().unwrap()
    }

    fn keys(list: &[&str]) -> Vec<Key> {
        list.iter().map(|k| key(k)).collect()
    }

    /// Plans `desired` against `live` by digest, as the CLI does (fetching from `live`),
    /// checks the plan equals the one made against every live entry, and returns the
    /// fetched keys.
    fn fetches(desired: &Entries, live: &Live) -> Vec<Key> {
        let digests = digests_of(live);
        let found = compare(desired, &digests);
        let fetched: Live = found
            .fetch
            .iter()
            .filter_map(|k| live.get_key_value(k))
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        assert!(changed_since(&digests, &found.fetch, &fetched).is_empty());
        let by_digest = diff_fetched(desired, &Catalogue::builtin(), &found, &fetched, origin());
        let whole = super::super::diff(desired, &Catalogue::builtin(), live, origin());
        assert_eq!(by_digest, whole);
        assert_eq!(
            serde_json::to_string(&by_digest).unwrap(),
            serde_json::to_string(&whole).unwrap()
        );
        found.fetch
    }

    #[test]
    fn an_unchanged_repo_fetches_nothing() {
        let mut store = MemoryStore::default();
        assert!(fetches(&entries(V1), &Live::new()).is_empty(), "all new");
        apply(
            &mut store,
            &super::super::diff(&entries(V1), &Catalogue::builtin(), &Live::new(), origin()),
            1,
        );
        let live = store.live().unwrap();
        assert!(fetches(&entries(V1), &live).is_empty());
        assert_eq!(
            compare(&entries(V1), &digests_of(&live)).same.len(),
            entries(V1).len()
        );
    }

    #[test]
    fn only_changed_and_undeclared_entries_are_fetched() {
        let mut store = MemoryStore::default();
        apply(
            &mut store,
            &super::super::diff(&entries(V1), &Catalogue::builtin(), &Live::new(), origin()),
            1,
        );
        let live = store.live().unwrap();
        // Changed (dns), no longer declared (ntp); ldap-queries is new: nothing to fetch.
        assert_eq!(
            fetches(&entries(V2), &live),
            keys(&["cluster/dns", "cluster/ntp"])
        );
        let plan = super::super::diff(&entries(V2), &Catalogue::builtin(), &live, origin());
        apply(&mut store, &plan, 2);
        // Back to V1: ntp is a tombstone there, whose version is the plan's base.
        let live = store.live().unwrap();
        assert!(live[&key("cluster/ntp")].value.is_none());
        assert_eq!(
            fetches(&entries(V1), &live),
            keys(&["cluster/dns", "cluster/ntp", "group:Paris/ldap-queries"])
        );
        // A tombstone the repo does not declare either is never fetched.
        assert_eq!(
            fetches(&entries(V2), &live),
            Vec::<Key>::new(),
            "V2 is applied"
        );
    }

    #[test]
    fn a_joined_machine_is_fetched_and_keeps_its_mesh_facts() {
        let mut store = MemoryStore::default();
        apply(
            &mut store,
            &super::super::diff(&entries(V1), &Catalogue::builtin(), &Live::new(), origin()),
            1,
        );
        let lab1 = key("@machine:lab1");
        let Some(EntryValue::Machine(mut m)) = store.live().unwrap()[&lab1].value.clone() else {
            panic!("lab1 is a member");
        };
        m.host_key = Some("ssh-ed25519 AAAA lab1".into());
        store
            .commit(Proposal {
                writes: [(lab1.clone(), Some(EntryValue::Machine(m)))].into(),
                base: BTreeMap::new(),
                meta: ChangeMeta {
                    author: "lab1".into(),
                    user: "lab1".into(),
                    host: "lab1".into(),
                    source: Source::Cli,
                    message: "joined".into(),
                    origin_kind: Default::default(),
                    confirm: None,
                    rollout: None,
                },
                version: crate::state::tests::version(2, "lab1"),
                wall_ms: 2,
                settles: Vec::new(),
            })
            .unwrap();
        let live = store.live().unwrap();
        // The repo never declares a host key: lab1's live value differs and is fetched,
        // and the plan keeps the key (no action), as a plan against every entry does.
        assert_eq!(fetches(&entries(V1), &live), vec![lab1.clone()]);
        let v3 = V1.replace("machine \"lab1\"", "machine \"lab1\" group=\"Paris\"");
        assert_eq!(fetches(&entries(&v3), &live), vec![lab1]);
    }

    #[test]
    fn an_entry_changed_between_the_answers_is_noticed() {
        let dns = key("cluster/dns");
        let mut store = MemoryStore::default();
        apply(
            &mut store,
            &super::super::diff(&entries(V1), &Catalogue::builtin(), &Live::new(), origin()),
            1,
        );
        let before = digests_of(&store.live().unwrap());
        let plan = super::super::diff(
            &entries(V2),
            &Catalogue::builtin(),
            &store.live().unwrap(),
            origin(),
        );
        apply(&mut store, &plan, 2);
        let after = store.live().unwrap();
        let wanted = keys(&["cluster/dns", "cluster/users"]);
        // dns changed; users was never live and still is not.
        assert_eq!(changed_since(&before, &wanted, &after), vec![dns.clone()]);
        let mut gone = after.clone();
        gone.remove(&dns);
        assert_eq!(changed_since(&before, &wanted, &gone), vec![dns]);
    }
}
