//! Unit tests of the index and of each rule of the exchange, and a cost test of a large
//! index missing a few change sets.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::*;
use crate::model::Version;

pub(super) fn v(ms: u64, origin: &str) -> Version {
    Version {
        hlc: Hlc::new(ms, 0),
        origin: MachineName::new(origin).unwrap(),
    }
}

fn id(ms: u64, origin: &str) -> ChangeSetId {
    ChangeSetId::of(&v(ms, origin))
}

fn index(origin: &str, readings: impl IntoIterator<Item = u64>) -> Index {
    let vs: Vec<Version> = readings.into_iter().map(|ms| v(ms, origin)).collect();
    Index::from_versions(&vs)
}

fn lab1() -> MachineName {
    MachineName::new("lab1").unwrap()
}

/// What one complete exchange between two replicas cost.
#[derive(Debug, Default)]
pub(super) struct Traffic {
    /// Bytes of the serialised [`SyncMsg`]s, summaries included.
    pub bytes: usize,
    /// How many [`SyncMsg`]s.
    pub messages: usize,
    /// Every change set sent, either way, in order.
    pub sent: Vec<ChangeSetId>,
}

fn names() -> [MachineName; 2] {
    [
        MachineName::new("a").unwrap(),
        MachineName::new("b").unwrap(),
    ]
}

/// Both summaries, then every answer until none is left, delivered in order, through the
/// wire encoding; a change set "sent" is inserted into the receiving replica.
pub(super) fn exchange(pair: &mut [Replica; 2]) -> Traffic {
    let names = names();
    let mut traffic = Traffic::default();
    let mut queue: VecDeque<(usize, SyncMsg)> = VecDeque::new();
    for (to, from) in [(1, 0), (0, 1)] {
        queue.push_back((to, SyncMsg::Summary(pair[from].summary())));
    }
    while let Some((to, msg)) = queue.pop_front() {
        let wire = serde_json::to_vec(&msg).unwrap();
        traffic.bytes += wire.len();
        traffic.messages += 1;
        let msg: SyncMsg = serde_json::from_slice(&wire).unwrap();
        for out in pair[to].on_message(&names[1 - to], &msg) {
            match out {
                Out::Send(m) => queue.push_back((1 - to, m)),
                Out::SendChangeSets(ids) => {
                    for version in pair[to].index().versions_of(&ids) {
                        pair[1 - to].insert(&version);
                    }
                    traffic.sent.extend(ids);
                }
            }
        }
    }
    traffic
}

fn replicas(a: Index, b: Index) -> [Replica; 2] {
    [Replica::new(a), Replica::new(b)]
}

fn ids(index: &Index) -> BTreeSet<ChangeSetId> {
    let summary = index.summary();
    summary
        .origins
        .keys()
        .flat_map(|o| index.ids_of(o).cloned())
        .collect()
}

#[test]
fn an_index_holds_each_change_set_once() {
    let mut a = index("lab1", [1, 2]);
    assert_eq!(a.len(), 2);
    assert!(a.contains(&id(2, "lab1")) && !a.contains(&id(3, "lab1")));
    assert!(!a.insert(&v(2, "lab1")), "already held");
    assert!(a.insert(&v(3, "lab1")));
    assert_eq!(a.version(&id(3, "lab1")), Some(&v(3, "lab1")));
    assert_eq!(
        a.versions_of(&[id(9, "lab1"), id(1, "lab1")]),
        [v(1, "lab1")]
    );
    let s = a.summary().origins[&lab1()];
    assert_eq!((s.count, s.max), (3, Hlc::new(3, 0)));
    let digest = [1, 2, 3]
        .iter()
        .fold(0u64, |d, &ms| d.wrapping_add(id(ms, "lab1").bits()));
    assert_eq!(s.digest, digest);
    assert!(Index::new().is_empty() && Index::new().summary().origins.is_empty());
}

#[test]
fn a_prefix_count_and_digest_match_the_change_sets_up_to_the_reading() {
    let a = index("lab1", (1..=50).map(|n| n * 10));
    for upto in [0, 5, 10, 255, 500, 9_999] {
        let held: Vec<u64> = (1..=50).map(|n| n * 10).filter(|&ms| ms <= upto).collect();
        let want = Prefix {
            count: held.len() as u64,
            digest: held
                .iter()
                .fold(0, |d: u64, &ms| d.wrapping_add(id(ms, "lab1").bits())),
        };
        assert_eq!(a.prefix(&lab1(), Hlc::new(upto, 0)), want, "up to {upto}");
    }
    let other = MachineName::new("lab2").unwrap();
    assert_eq!(a.prefix(&other, Hlc::new(500, 0)), Prefix::default());
}

#[test]
fn the_summary_has_one_record_per_origin() {
    let vs: Vec<Version> = (0..10_000u64)
        .map(|n| v(1_000 + n / 5, &format!("lab{}", n % 5)))
        .collect();
    let a = Index::from_versions(&vs);
    assert_eq!(a.len(), 10_000);
    let s = a.summary();
    assert_eq!(s.origins.len(), 5);
    assert!(s.origins.values().all(|o| o.count == 2_000));
    assert!(serde_json::to_vec(&SyncMsg::Summary(s)).unwrap().len() < 512);
}

/// A summary's reading that pulls only `origin`, from the record `mine`, until `until`.
fn behind(origin: &str, mine: OriginSummary, until: u64) -> Reading {
    Reading {
        behind: [(
            MachineName::new(origin).unwrap(),
            (mine, Hlc::new(until, 0)),
        )]
        .into(),
        lists: Vec::new(),
    }
}

fn record(index: &Index, origin: &str) -> OriginSummary {
    index.summary().origins[&MachineName::new(origin).unwrap()]
}

fn pull(origin: &str, mine: OriginSummary) -> BTreeMap<MachineName, OriginSummary> {
    [(MachineName::new(origin).unwrap(), mine)].into()
}

#[test]
fn equal_indexes_send_nothing() {
    let a = index("lab1", 1..=5);
    let b = index("lab1", 1..=5);
    assert_eq!(a.on_summary(&b.summary()), Reading::default());
    assert_eq!(b.on_summary(&a.summary()), Reading::default());
    assert_eq!(
        Index::new().on_summary(&Index::new().summary()),
        Reading::default()
    );
    let traffic = exchange(&mut replicas(a, b));
    assert_eq!((traffic.messages, traffic.sent.len()), (2, 0));
}

#[test]
fn a_peer_without_the_origin_pulls_all_of_it() {
    let a = index("lab1", 1..=3);
    let empty = Index::new();
    assert_eq!(
        a.on_summary(&empty.summary()),
        Reading::default(),
        "b's turn"
    );
    assert_eq!(
        empty.on_summary(&a.summary()),
        behind("lab1", OriginSummary::default(), 3)
    );
    assert_eq!(
        a.on_pull(&pull("lab1", OriginSummary::default())),
        [Out::SendChangeSets(vec![
            id(1, "lab1"),
            id(2, "lab1"),
            id(3, "lab1")
        ])]
    );
}

#[test]
fn a_peer_with_a_strict_prefix_pulls_the_rest_in_one_round_trip() {
    let a = index("lab1", 1..=8);
    let b = index("lab1", 1..=5);
    assert_eq!(a.on_summary(&b.summary()), Reading::default(), "b's turn");
    assert_eq!(
        b.on_summary(&a.summary()),
        behind("lab1", record(&b, "lab1"), 8)
    );
    assert_eq!(
        a.on_pull(&pull("lab1", record(&b, "lab1"))),
        [Out::SendChangeSets(vec![
            id(6, "lab1"),
            id(7, "lab1"),
            id(8, "lab1")
        ])]
    );
    // Two summaries, the pull, and the three change sets.
    let traffic = exchange(&mut replicas(a, b));
    assert_eq!((traffic.messages, traffic.sent.len()), (3, 3));
}

#[test]
fn a_hole_on_the_peers_side_below_its_max_is_found_through_its_id_list() {
    let a = index("lab1", 1..=8);
    let b = index("lab1", (1..=8).filter(|&n| n != 3));
    // The same greatest reading: the smaller side lists its ids; the other waits.
    assert_eq!(a.on_summary(&b.summary()), Reading::default());
    let reading = b.on_summary(&a.summary());
    assert!(reading.behind.is_empty());
    let [Out::Send(SyncMsg::Ids { origin, ids })] = reading.lists.as_slice() else {
        panic!("{reading:?}")
    };
    assert_eq!((origin, ids.len()), (&lab1(), 7));
    assert_eq!(
        a.on_ids(origin, ids),
        [Out::SendChangeSets(vec![id(3, "lab1")])]
    );
}

#[test]
fn a_hole_on_my_side_below_the_peers_max_is_wanted() {
    // a reaches further but lacks 3; b lacks 7 and 8.
    let a = index("lab1", (1..=8).filter(|&n| n != 3));
    let b = index("lab1", 1..=6);
    assert_eq!(a.on_summary(&b.summary()), Reading::default(), "b's turn");
    assert_eq!(
        b.on_summary(&a.summary()),
        behind("lab1", record(&b, "lab1"), 8)
    );
    // b's record is no prefix of a's: a lists its ids.
    let out = a.on_pull(&pull("lab1", record(&b, "lab1")));
    let [Out::Send(SyncMsg::Ids { origin, ids })] = out.as_slice() else {
        panic!("{out:?}")
    };
    let answer = b.on_ids(origin, ids);
    assert_eq!(
        answer,
        [
            Out::SendChangeSets(vec![id(3, "lab1")]),
            Out::Send(SyncMsg::Want {
                ids: vec![id(7, "lab1"), id(8, "lab1")]
            })
        ]
    );
    assert_eq!(
        a.on_want(&[id(7, "lab1"), id(8, "lab1"), id(3, "lab1")]),
        [Out::SendChangeSets(vec![id(7, "lab1"), id(8, "lab1")])],
        "only what it holds"
    );
}

#[test]
fn holes_on_both_sides_with_the_same_max_are_listed_by_exactly_one_side() {
    let a = index("lab1", (1..=8).filter(|&n| n != 2));
    let b = index("lab1", (1..=8).filter(|&n| n != 5));
    let from_a = a.on_summary(&b.summary());
    let from_b = b.on_summary(&a.summary());
    assert!(from_a.behind.is_empty() && from_b.behind.is_empty());
    assert_eq!(
        from_a.lists.len() + from_b.lists.len(),
        1,
        "{from_a:?} {from_b:?}"
    );
    let mut pair = replicas(a, b);
    let traffic = exchange(&mut pair);
    assert_eq!(
        traffic.sent.iter().collect::<BTreeSet<_>>(),
        [id(2, "lab1"), id(5, "lab1")].iter().collect()
    );
    assert_eq!(ids(pair[0].index()), ids(pair[1].index()));
}

#[test]
fn each_side_pulls_the_origins_the_other_leads() {
    let vs = [v(1, "lab1"), v(2, "lab1"), v(1, "lab2"), v(5, "lab3")];
    let a = Index::from_versions(&vs[..3]);
    let b = Index::from_versions([&vs[0], &vs[3]]);
    let mut pair = replicas(a, b);
    let traffic = exchange(&mut pair);
    let mut sent = traffic.sent.clone();
    sent.sort();
    let mut want: Vec<ChangeSetId> = [&vs[1], &vs[2], &vs[3]]
        .iter()
        .map(|v| ChangeSetId::of(v))
        .collect();
    want.sort();
    assert_eq!(sent, want);
    // Two summaries and one pull each way: every origin was decided on the cheap path.
    assert_eq!(traffic.messages, 4);
    assert_eq!(ids(pair[0].index()), ids(pair[1].index()));
    assert!(
        pair.iter().all(|r| r.pulling().next().is_none()),
        "pulls done"
    );
}

#[test]
fn answers_are_idempotent() {
    let a = index("lab1", 1..=8);
    let b = index("lab1", (1..=6).filter(|&n| n != 2));
    assert_eq!(a.on_summary(&b.summary()), a.on_summary(&b.summary()));
    let mut pair = replicas(a, b);
    let first = exchange(&mut pair);
    assert_eq!(first.sent.len(), 3);
    // Done: a second exchange sends the two summaries only.
    let again = exchange(&mut pair);
    assert!(again.sent.is_empty());
    assert_eq!(again.messages, 2);
    // A list repeated, with duplicates, wants each missing id once.
    let listed = [id(9, "lab1"), id(9, "lab1"), id(1, "lab1")];
    assert_eq!(
        pair[0].index().on_ids(&lab1(), &listed),
        [
            Out::SendChangeSets((2..=8).map(|n| id(n, "lab1")).collect()),
            Out::Send(SyncMsg::Want {
                ids: vec![id(9, "lab1")]
            })
        ]
    );
    assert!(pair[0].index().on_want(&[id(9, "lab1")]).is_empty());
}

#[test]
fn a_machine_back_among_many_peers_pulls_each_origin_from_one_of_them() {
    let peers: Vec<MachineName> = ["p1", "p2", "p3"]
        .iter()
        .map(|n| MachineName::new(*n).unwrap())
        .collect();
    let full: Vec<Version> = (1..=20)
        .flat_map(|n| [v(n, "lab1"), v(n, "lab2")])
        .collect();
    let held = Index::from_versions(full.iter().filter(|v| v.hlc <= Hlc::new(10, 0)));
    let theirs = Index::from_versions(&full).summary();
    let mut me = Replica::new(held.clone());
    let first = me.on_message(&peers[0], &SyncMsg::Summary(theirs.clone()));
    let [Out::Send(SyncMsg::Pull { origins })] = first.as_slice() else {
        panic!("{first:?}")
    };
    assert_eq!(origins.len(), 2, "both origins, from p1");
    // p2's and p3's summaries, arriving meanwhile, pull nothing: p1's answer is on its way.
    for p in &peers[1..] {
        assert!(
            me.on_message(p, &SyncMsg::Summary(theirs.clone()))
                .is_empty()
        );
    }
    // p1's next summary pulls again (its answer may have been lost).
    assert_eq!(
        me.on_message(&peers[0], &SyncMsg::Summary(theirs.clone())),
        first
    );
    // p1's link goes down: the next peer to speak is pulled from.
    me.link_down(&peers[0]);
    let from_p2 = me.on_message(&peers[1], &SyncMsg::Summary(theirs.clone()));
    assert!(matches!(
        from_p2.as_slice(),
        [Out::Send(SyncMsg::Pull { .. })]
    ));
    assert!(me.pulling().all(|(_, p)| *p == peers[1]));
    // The answer arrives: the pulls are done, and nobody's summary pulls again.
    for v in full.iter().filter(|v| v.hlc > Hlc::new(10, 0)) {
        me.insert(v);
    }
    assert_eq!(me.pulling().count(), 0);
    for p in &peers {
        assert!(
            me.on_message(p, &SyncMsg::Summary(theirs.clone()))
                .is_empty()
        );
    }
}

#[test]
fn a_pull_is_done_once_its_reading_is_held_even_through_a_new_index() {
    let full = index("lab1", 1..=9);
    let mut me = Replica::new(index("lab1", 1..=4));
    let p1 = MachineName::new("p1").unwrap();
    assert!(
        !me.on_message(&p1, &SyncMsg::Summary(full.summary()))
            .is_empty()
    );
    me.replace(index("lab1", 1..=5));
    assert_eq!(me.pulling().count(), 1, "not there yet");
    me.replace(index("lab1", 1..=9));
    assert_eq!(me.pulling().count(), 0);
}

/// 10,000 change sets from four origins.
fn large() -> Vec<Version> {
    (0..10_000u64)
        .map(|n| v(1_700_000_000_000 + n, &format!("lab{}", n % 4)))
        .collect()
}

fn missing_cost(name: &str, missing: &[Version]) -> Traffic {
    let all = large();
    let a = Index::from_versions(&all);
    let b = Index::from_versions(all.iter().filter(|v| !missing.contains(v)));
    let mut pair = replicas(a, b);
    let traffic = exchange(&mut pair);
    let mut sent = traffic.sent.clone();
    sent.sort();
    let mut want: Vec<ChangeSetId> = missing.iter().map(ChangeSetId::of).collect();
    want.sort();
    assert_eq!(sent, want, "{name}: exactly the missing ones, each once");
    assert_eq!(ids(pair[0].index()), ids(pair[1].index()));
    eprintln!(
        "replica cost, {name}: {} messages, {} bytes, {} change sets sent",
        traffic.messages,
        traffic.bytes,
        traffic.sent.len()
    );
    traffic
}

#[test]
fn ten_missing_of_ten_thousand_cost_ten_change_sets_and_small_messages() {
    let all = large();
    // The newest 10 of one origin: the summaries alone decide, and one pull takes them.
    let newest: Vec<Version> = all
        .iter()
        .filter(|v| v.origin.as_str() == "lab2")
        .rev()
        .take(10)
        .cloned()
        .collect();
    let t = missing_cost("newest 10 of one origin", &newest);
    assert_eq!(t.messages, 3);
    assert!(t.bytes < 1024, "{}", t.bytes);

    // 10 holes scattered inside one origin: one id list of that origin.
    let scattered: Vec<Version> = all
        .iter()
        .filter(|v| v.origin.as_str() == "lab1")
        .step_by(237)
        .take(10)
        .cloned()
        .collect();
    let t = missing_cost("10 scattered holes in one origin", &scattered);
    assert_eq!(t.messages, 3);
    assert!(t.bytes < 64 * 1024, "{}", t.bytes);

    // 10 holes scattered over every origin: one id list per origin (the summaries
    // cannot say where in an origin the holes are).
    let everywhere: Vec<Version> = all.iter().step_by(997).take(10).cloned().collect();
    let t = missing_cost("10 scattered holes over 4 origins", &everywhere);
    assert!(t.bytes < 256 * 1024, "{}", t.bytes);
}
