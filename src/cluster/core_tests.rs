//! Tests of the core on a [`MemoryStore`]: commits, merges, the clock, applies and
//! their checks.

use super::*;
use crate::state::MemoryStore;

fn node(text: &str) -> Node {
    let doc: kdl::KdlDocument = text.parse().unwrap();
    Node::from_kdl(&doc.nodes()[0])
}

fn core() -> Core<MemoryStore> {
    Core::new(
        MemoryStore::default(),
        MachineName::new("lab1").unwrap(),
        "10.1.0.1".into(),
    )
    .unwrap()
}

fn caller() -> Caller {
    Caller {
        user: "admin".into(),
        authority: Authority::All,
        followed: None,
        break_glass: None,
        origin_kind: crate::model::OriginKind::Claimed,
    }
}

#[test]
fn create_lifts_clusterable_standalone_settings_and_keeps_machine_only_ones() {
    let mut c = core();
    let standalone = [
        node("dns { server \"10.0.0.53\" }"),
        node("interfaces { interface \"Data1\" address=\"10.1.0.1/24\" }"),
    ];
    c.bootstrap(&standalone, 1).unwrap().unwrap();
    assert!(
        c.bootstrap(&standalone, 2).unwrap().is_none(),
        "only on first start"
    );
    let cs = c
        .create_cluster(&caller(), "americas", &Catalogue::builtin(), 3)
        .unwrap();
    let (identities, keys): (Vec<String>, Vec<String>) = cs
        .writes
        .keys()
        .map(Key::to_string)
        .partition(|k| k.starts_with("@identity:"));
    assert_eq!(identities.len(), 1, "the cluster's first identity");
    assert_eq!(
        keys,
        [
            "@cluster",
            "@group:Main_Group",
            "@machine:lab1",
            "cluster/dns",
            "machine:lab1/dns"
        ]
    );
    let live = c.live().unwrap();
    assert_eq!(
        live[&"machine:lab1/dns".parse::<Key>().unwrap()].value,
        None
    );
    assert!(
        live[&"machine:lab1/interfaces".parse::<Key>().unwrap()]
            .value
            .is_some()
    );
    let again = c.create_cluster(&caller(), "other", &Catalogue::builtin(), 4);
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("already in a cluster: cluster americas")
    );
    // Membership is typed: the machine is in Main_Group at its address.
    let me = live[&"@machine:lab1".parse::<Key>().unwrap()].value.clone();
    assert_eq!(
        me.unwrap().to_text(&"@machine:lab1".parse().unwrap()),
        "machine lab1 address=\"10.1.0.1\" group=Main_Group\n"
    );
}

#[test]
fn bad_writes_are_refused_whole_and_rollback_restores_an_earlier_state() {
    let mut c = core();
    let origin = Origin {
        source: Source::Cli,
        author: "ada".into(),
        message: "m".into(),
    };
    let dns: Key = "cluster/dns".parse().unwrap();
    let ntp: Key = "cluster/ntp".parse().unwrap();
    let w = |pairs: &[(&Key, Option<&str>)]| -> Writes {
        pairs
            .iter()
            .map(|(k, v)| {
                let value = v.map(|t| match crate::config::value_from_text(k, t) {
                    Ok(v) => v,
                    // A node named like another section: what a bad client could send.
                    Err(_) => EntryValue::Section(node(t)),
                });
                ((*k).clone(), value)
            })
            .collect()
    };
    let none = |ks: &[&Key]| -> Base { ks.iter().map(|k| ((*k).clone(), None)).collect() };
    let cluster = EntryValue::Cluster { name: "x".into() };
    for bad in [
        w(&[(&ntp, Some("ntp")), (&dns, Some("ntp"))]),
        [(dns.clone(), Some(cluster))].into(),
        [(Key::Cluster, Some(EntryValue::Section(node("dns"))))].into(),
    ] {
        let r = c.apply(
            &caller(),
            bad.clone(),
            none(&[&dns, &ntp, &Key::Cluster]),
            &origin,
            1,
        );
        assert!(matches!(r, Err(Refusal::Invalid { .. })), "{bad:?}");
    }
    assert!(c.live().unwrap().is_empty());
    // A cluster section needs a cluster; a machine's needs a member.
    let r = c.apply(
        &caller(),
        w(&[(&dns, Some("dns"))]),
        none(&[&dns]),
        &origin,
        1,
    );
    assert!(
        r.unwrap_err()
            .to_string()
            .contains("cluster is not part of the cluster"),
        "refused without a cluster"
    );
    let other: Key = "machine:lab9/dns".parse().unwrap();
    let r = c.apply(
        &caller(),
        w(&[(&other, Some("dns"))]),
        none(&[&other]),
        &origin,
        1,
    );
    assert!(
        r.unwrap_err()
            .to_string()
            .contains("machine:lab9 is not part of the cluster")
    );
    // Contents are checked as validate checks them, with the line they are on.
    let cluster_key = Key::Cluster;
    let bad_dns = w(&[
        (&cluster_key, Some("cluster c")),
        (&dns, Some("dns { server \"not-an-ip\"; colour 1; }")),
    ]);
    let r = c.apply(&caller(), bad_dns, none(&[&dns, &cluster_key]), &origin, 1);
    let why = r.unwrap_err().to_string();
    assert!(why.contains("cluster/dns:2"), "{why}");
    assert!(
        why.contains("unknown") && why.contains("not-an-ip"),
        "{why}"
    );
    assert!(c.live().unwrap().is_empty());
    c.apply(
        &caller(),
        w(&[(&cluster_key, Some("cluster c"))]),
        none(&[&cluster_key]),
        &origin,
        1,
    )
    .unwrap();
    let r = c.apply(
        &caller(),
        w(&[(&dns, Some("dns"))]),
        Base::new(),
        &origin,
        1,
    );
    assert!(r.unwrap_err().to_string().contains("no base version"));

    let first = c
        .apply(
            &caller(),
            w(&[(&dns, Some("dns"))]),
            none(&[&dns]),
            &origin,
            1,
        )
        .unwrap()
        .unwrap();
    let live = c.live().unwrap();
    let base: Base = [
        (dns.clone(), Some(live[&dns].stamp.version.clone())),
        (ntp.clone(), None),
    ]
    .into();
    c.apply(
        &caller(),
        w(&[
            (&dns, Some("dns { server \"10.0.0.9\"; }")),
            (&ntp, Some("ntp")),
        ]),
        base,
        &origin,
        2,
    )
    .unwrap();
    let first_id = first.id();
    let prefix = &first_id.as_str()[..6];
    let cs = c.rollback(&caller(), prefix, 3).unwrap().unwrap();
    assert_eq!(cs.seq, 4);
    assert_eq!(
        cs.meta.message,
        format!("rollback to change set {}", first.id())
    );
    let live = c.live().unwrap();
    assert_eq!(live[&dns].value, w(&[(&dns, Some("dns"))])[&dns]);
    assert_eq!(live[&ntp].value, None);
    assert!(
        c.rollback(&caller(), prefix, 4).unwrap().is_none(),
        "already there"
    );
    let missing = c.rollback(&caller(), "ffff", 4).unwrap_err().to_string();
    assert!(missing.contains("there is no change set ffff"), "{missing}");
    assert!(
        c.rollback(&caller(), "9", 4).is_err(),
        "local numbers are not ids"
    );
    // History is never rewritten.
    assert_eq!(c.store.change_sets().unwrap().len(), 4);
}

#[test]
fn a_merged_change_set_moves_the_clock_and_is_taken_once() {
    let mut c = core();
    let remote = crate::state::tests::remote(5_000, "lab2", &[("cluster/dns", Some("dns"))]);
    let m = c.merge(remote.clone(), 1_000).unwrap();
    assert!(m.new && m.changed.len() == 1);
    assert!(!c.merge(remote, 1_000).unwrap().new);
    // The next local write orders after the merged one, though the wall clock is behind.
    let dns: Key = "cluster/dns".parse().unwrap();
    let v = c.live().unwrap()[&dns].stamp.version.clone();
    let origin = Origin {
        source: Source::Cli,
        author: "ada".into(),
        message: "m".into(),
    };
    let cs = c
        .apply(
            &caller(),
            [(dns.clone(), None)].into(),
            [(dns, Some(v.clone()))].into(),
            &origin,
            1_000,
        )
        .unwrap()
        .unwrap();
    assert!(cs.version > v);
    // A clock hours ahead is refused.
    let far = crate::state::tests::remote(
        1_000 + 2 * 3_600_000,
        "lab3",
        &[("cluster/ntp", Some("ntp"))],
    );
    assert!(c.merge(far, 1_000).is_err());
}
