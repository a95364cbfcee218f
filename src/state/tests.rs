//! The store contract every implementation must keep, and the helpers its tests (and
//! the agent's) build change sets with.

use super::*;
use crate::model::MachineName;

pub fn meta(author: &str) -> ChangeMeta {
    ChangeMeta {
        author: author.into(),
        user: author.into(),
        host: "lab1".into(),
        source: Source::Cli,
        message: "test".into(),
        origin_kind: Default::default(),
        confirm: None,
        rollout: None,
    }
}

pub fn version(hlc: u64, origin: &str) -> Version {
    Version {
        hlc: Hlc::new(hlc, 0),
        origin: MachineName::new(origin).unwrap(),
    }
}

/// `(key, KDL text or None)` pairs as writes.
pub fn writes(pairs: &[(&str, Option<&str>)]) -> Writes {
    pairs
        .iter()
        .map(|(k, v)| {
            let key: Key = k.parse().unwrap();
            let value = v.map(|t| crate::config::value_from_text(&key, t).unwrap());
            (key, value)
        })
        .collect()
}

pub fn proposal(hlc: u64, pairs: &[(&str, Option<&str>)], base: Base) -> Proposal {
    Proposal {
        writes: writes(pairs),
        base,
        meta: meta("alice"),
        version: version(hlc, "lab1"),
        wall_ms: hlc,
        settles: Vec::new(),
    }
}

/// A change set made on `origin`, as replication would deliver it.
pub fn remote(hlc: u64, origin: &str, pairs: &[(&str, Option<&str>)]) -> ChangeSet {
    ChangeSet {
        seq: 0,
        version: version(hlc, origin),
        wall_ms: hlc,
        meta: meta("bob"),
        writes: writes(pairs),
        supersedes: None,
        settles: Vec::new(),
    }
}

fn text(live: &Live, key: &Key) -> Option<String> {
    live[key].value.as_ref().map(|v| v.to_text(key))
}

/// The behaviour every store must have, run against each implementation.
pub fn store_contract(store: &mut dyn Store) {
    assert!(store.live().unwrap().is_empty());
    let dns: Key = "cluster/dns".parse().unwrap();
    let base: Base = [(dns.clone(), None)].into();
    let cs = store
        .commit(proposal(
            10,
            &[
                ("cluster/dns", Some("dns\n")),
                ("@cluster", Some("cluster a\n")),
            ],
            base,
        ))
        .unwrap();
    assert_eq!(cs.seq, 1);
    let first = cs.id();
    let live = store.live().unwrap();
    assert_eq!(text(&live, &dns).as_deref(), Some("dns\n"));
    assert_eq!(live[&dns].stamp.change_set(), first);

    // A proposal computed before change set 1 is stale and writes nothing.
    let stale = store.commit(proposal(
        20,
        &[("cluster/dns", Some("dns { server x; }"))],
        [(dns.clone(), None)].into(),
    ));
    let CommitError::Stale(conflicts) = stale.unwrap_err() else {
        panic!("not stale")
    };
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].found.as_ref().unwrap().change_set(), first);
    assert!(conflicts[0].to_string().contains(&format!(
        "cluster/dns was created by alice on lab1 in change set {first} (cli)"
    )));
    assert_eq!(text(&store.live().unwrap(), &dns).as_deref(), Some("dns\n"));

    // Against the right base it commits; a tombstone is kept as an entry.
    let v1 = store.live().unwrap()[&dns].stamp.version.clone();
    let cs = store
        .commit(proposal(
            30,
            &[("cluster/dns", None)],
            [(dns.clone(), Some(v1))].into(),
        ))
        .unwrap();
    assert_eq!(cs.seq, 2);
    assert_eq!(
        cs.supersedes,
        Some([(dns.clone(), Some(version(10, "lab1")))].into()),
        "a commit records what it replaced"
    );
    let second = cs.id();
    assert_eq!(store.live().unwrap()[&dns].value, None);

    // A plan that saw the value, applied after the removal, says it was removed.
    let stale = store.commit(proposal(
        31,
        &[("cluster/dns", Some("dns { server x; }"))],
        [(dns.clone(), Some(version(10, "lab1")))].into(),
    ));
    let CommitError::Stale(conflicts) = stale.unwrap_err() else {
        panic!("not stale")
    };
    assert_eq!(
        conflicts[0].to_string(),
        format!("cluster/dns was removed by alice on lab1 in change set {second} (cli)")
    );
    assert_eq!(store.last_hlc().unwrap(), Hlc::new(30, 0));

    let sets = store.change_sets().unwrap();
    assert_eq!(sets.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        state_as_of(&sets, &sets[0].version)[&dns],
        writes(&[("cluster/dns", Some("dns"))])[&dns]
    );
    assert_eq!(state_as_of(&sets, &sets[1].version)[&dns], None);
    assert_eq!(find_change_set(&sets, &first.as_str()[..6]).unwrap().seq, 1);

    // Merging: a change set from lab2 with a greater version wins the key; one with
    // a smaller version is recorded but loses; merging again changes nothing.
    let ntp: Key = "cluster/ntp".parse().unwrap();
    let later = remote(
        40,
        "lab2",
        &[
            ("cluster/dns", Some("dns { server y; }")),
            ("cluster/ntp", Some("ntp")),
        ],
    );
    let m = store.merge(later.clone()).unwrap();
    assert_eq!(
        (m.new, m.changed.clone()),
        (true, vec![dns.clone(), ntp.clone()])
    );
    // What it replaced, as it was: only entries of keys it won.
    assert!(m.replaced.keys().all(|k| m.changed.contains(k)));
    assert_eq!(
        store.merge(later.clone()).unwrap(),
        Merged::default(),
        "idempotent"
    );
    let older = remote(35, "lab3", &[("cluster/ntp", Some("ntp { server z; }"))]);
    let m = store.merge(older).unwrap();
    assert_eq!((m.new, m.changed.len(), m.replaced.len()), (true, 0, 0));
    let live = store.live().unwrap();
    assert_eq!(text(&live, &ntp).as_deref(), Some("ntp\n"));
    assert_eq!(live[&dns].stamp.version, version(40, "lab2"));
    assert_eq!(live[&dns].stamp.meta.author, "bob");
    // Equal clocks: the origin breaks the tie, the same way everywhere.
    let tie = remote(40, "lab9", &[("cluster/dns", Some("dns { server t; }"))]);
    assert_eq!(store.merge(tie).unwrap().changed, vec![dns.clone()]);
    assert_eq!(store.last_hlc().unwrap(), Hlc::new(40, 0));

    let sets = store.change_sets().unwrap();
    assert_eq!(
        sets.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    // Found by version, in the order asked, without the ones it does not hold.
    let found = store
        .change_sets_of(&[
            version(40, "lab9"),
            version(99, "lab1"),
            version(10, "lab1"),
        ])
        .unwrap();
    assert_eq!(found, [sets[4].clone(), sets[0].clone()]);
    assert!(store.change_sets_of(&[]).unwrap().is_empty());
    // As of lab2's change set, lab3's older write is in the past too, but it lost.
    let at = state_as_of(&sets, &version(40, "lab2"));
    assert_eq!(at[&ntp], writes(&[("cluster/ntp", Some("ntp"))])[&ntp]);
    assert!(matches!(
        find_change_set(&sets, "zz"),
        Err(FindError::Malformed(_))
    ));
    // Reading by key prefix gives exactly the entries under the prefixes.
    let some = store.live_under(&["@".into(), "cluster/n".into()]).unwrap();
    let keys: Vec<String> = some.keys().map(Key::to_string).collect();
    assert_eq!(keys, ["@cluster", "cluster/ntp"]);
    assert!(store.live_under(&["machine:".into()]).unwrap().is_empty());
    // A local commit after merges continues after the greatest clock seen.
    let v = store.live().unwrap()[&dns].stamp.version.clone();
    let cs = store
        .commit(proposal(
            50,
            &[("cluster/dns", None)],
            [(dns.clone(), Some(v))].into(),
        ))
        .unwrap();
    assert_eq!(cs.seq, 6);
}

/// What [`Store::replace`] must do, run against each implementation.
pub fn replace_contract(store: &mut dyn Store) {
    store
        .commit(proposal(
            90,
            &[("machine:lab9/dns", Some("dns\n"))],
            Base::new(),
        ))
        .unwrap();
    let theirs = vec![
        remote(20, "lab1", &[("@cluster", Some("cluster a\n"))]),
        remote(30, "lab2", &[("cluster/ntp", Some("ntp\n"))]),
        remote(25, "lab1", &[("cluster/ntp", Some("ntp { server x; }\n"))]),
    ];
    store.replace(theirs.clone()).unwrap();
    let live = store.live().unwrap();
    let keys: Vec<String> = live.keys().map(Key::to_string).collect();
    assert_eq!(
        keys,
        ["@cluster", "cluster/ntp"],
        "the old entries are gone"
    );
    let ntp: Key = "cluster/ntp".parse().unwrap();
    assert_eq!(
        text(&live, &ntp).as_deref(),
        Some("ntp\n"),
        "the greater version won"
    );
    let sets = store.change_sets().unwrap();
    assert_eq!(sets.len(), 3);
    assert_eq!(
        sets.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "a history of its own"
    );
    assert_eq!(
        store.last_hlc().unwrap(),
        Hlc::new(90, 0),
        "the clock does not go back"
    );
    // Merging one of them again changes nothing.
    assert_eq!(store.merge(theirs[1].clone()).unwrap(), Merged::default());
}

#[test]
fn the_memory_store_keeps_the_contract() {
    store_contract(&mut MemoryStore::default());
    replace_contract(&mut MemoryStore::default());
}

/// A change set on `origin` that is what `confirm` says to commit confirmed.
fn with_confirm(mut cs: ChangeSet, confirm: crate::model::Confirm) -> ChangeSet {
    cs.meta.confirm = Some(confirm);
    cs
}

/// A trial's reverts win over it (and over what came before it) and lose to every write
/// made after it, in whatever order a store receives them: every store ends with the same
/// live entries. `make` gives a fresh store of the implementation under test.
pub fn revert_contract(make: &mut dyn FnMut() -> Box<dyn Store>) {
    use crate::model::Confirm;
    let before = remote(
        5,
        "lab1",
        &[("cluster/dns", Some("dns { server \"10.0.0.1\"; }\n"))],
    );
    let trial = with_confirm(
        remote(
            10,
            "lab1",
            &[
                ("cluster/dns", Some("dns { server \"10.9.9.9\"; }\n")),
                ("cluster/ntp", Some("ntp { server \"10.9.9.1\"; }\n")),
            ],
        ),
        Confirm::Trial { by_ms: 100 },
    );
    let undo = |hlc: u64, origin: &str| {
        with_confirm(
            remote(
                hlc,
                origin,
                &[
                    ("cluster/dns", Some("dns { server \"10.0.0.1\"; }\n")),
                    ("cluster/ntp", None),
                ],
            ),
            Confirm::Reverts {
                version: trial.version.clone(),
            },
        )
    };
    // Two machines revert by their own clocks; one wrote ntp again after the trial, on
    // the other side of a partition, with a clock behind the reverts'.
    let later = remote(
        20,
        "lab3",
        &[("cluster/ntp", Some("ntp { server \"10.0.0.7\"; }\n"))],
    );
    let sets = [
        before,
        trial.clone(),
        undo(30, "lab2"),
        undo(40, "lab3"),
        later,
    ];
    let mut outcomes = std::collections::BTreeSet::new();
    let mut order: Vec<usize> = (0..sets.len()).collect();
    // Every order of the five (Heap's algorithm would do; 120 permutations by rotation).
    fn permutations(k: usize, order: &mut Vec<usize>, each: &mut dyn FnMut(&[usize])) {
        if k == order.len() {
            each(order);
            return;
        }
        for i in k..order.len() {
            order.swap(k, i);
            permutations(k + 1, order, each);
            order.swap(k, i);
        }
    }
    let mut runs = 0;
    permutations(0, &mut order, &mut |o| {
        let mut store = make();
        for &i in o {
            store.merge(sets[i].clone()).unwrap();
        }
        let live = store.live().unwrap();
        let shown: Vec<(String, Option<String>)> = live
            .iter()
            .map(|(k, e)| (k.to_string(), e.value.as_ref().map(|v| v.to_text(k))))
            .collect();
        outcomes.insert(format!("{shown:?}"));
        runs += 1;
    });
    assert_eq!(runs, 120);
    assert_eq!(outcomes.len(), 1, "orders disagree: {outcomes:#?}");
    let mut store = make();
    for cs in &sets {
        store.merge(cs.clone()).unwrap();
    }
    let live = store.live().unwrap();
    let dns: Key = "cluster/dns".parse().unwrap();
    let ntp: Key = "cluster/ntp".parse().unwrap();
    assert_eq!(
        text(&live, &dns).as_deref(),
        Some("dns {\n    server \"10.0.0.1\"\n}\n"),
        "reverted"
    );
    assert_eq!(
        text(&live, &ntp).as_deref(),
        Some("ntp {\n    server \"10.0.0.7\"\n}\n"),
        "the later write stays"
    );
    // As of the trial's latest revert, history folds the same way.
    let state = state_as_of(&sets, &version(40, "lab3"));
    assert_eq!(state[&dns], live[&dns].value);
    assert_eq!(state[&ntp], live[&ntp].value);
}

#[test]
fn a_memory_store_ranks_reverts_as_the_contract_says() {
    revert_contract(&mut || Box::new(MemoryStore::default()));
}

#[test]
fn a_write_beaten_unseen_is_lost_and_one_seen_or_equal_is_not() {
    let me = MachineName::new("lab1").unwrap();
    let mut store = MemoryStore::default();
    let mine = remote(
        10,
        "lab1",
        &[("cluster/dns", Some("dns { server \"10.0.0.1\"; }\n"))],
    );
    store.merge(mine.clone()).unwrap();
    let dns: Key = "cluster/dns".parse().unwrap();
    // Made across a partition: it replaced what it had seen, which was not lab1's write.
    let mut theirs = remote(
        20,
        "lab3",
        &[("cluster/dns", Some("dns { server \"10.0.0.3\"; }\n"))],
    );
    theirs.supersedes = Some([(dns.clone(), None)].into());
    let m = store.merge(theirs.clone()).unwrap();
    let lost = lost_to(&me, &theirs, &m.replaced);
    assert_eq!(lost.len(), 1);
    assert_eq!((&lost[0].key, &lost[0].lost.version), (&dns, &mine.version));
    // Not lab1's write to lose, for lab3.
    assert!(lost_to(&MachineName::new("lab3").unwrap(), &theirs, &m.replaced).is_empty());
    // Over lab1's write as it was: one that saw it replaced it knowingly, and one of
    // the same value loses nothing.
    let mut only_mine = MemoryStore::default();
    only_mine.merge(mine.clone()).unwrap();
    let before = only_mine.live().unwrap();
    let mut seen = remote(
        30,
        "lab2",
        &[("cluster/dns", Some("dns { server \"10.0.0.2\"; }\n"))],
    );
    seen.supersedes = Some([(dns.clone(), Some(mine.version.clone()))].into());
    assert!(lost_to(&me, &seen, &before).is_empty());
    let mut same = remote(
        40,
        "lab2",
        &[("cluster/dns", Some("dns { server \"10.0.0.1\"; }\n"))],
    );
    same.supersedes = Some([(dns.clone(), None)].into());
    assert!(lost_to(&me, &same, &before).is_empty());
    // The unseen write of another value over the same entry is lost.
    assert_eq!(lost_to(&me, &theirs, &before).len(), 1);
}
