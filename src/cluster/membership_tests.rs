//! Tests of the mesh's membership changes on a [`MemoryStore`]: admitting a joiner (its
//! proofs, addresses, Strata release, the machine threshold), taking the cluster, removing
//! and leaving, disconnecting, renaming.

use super::*;
use crate::state::MemoryStore;

/// Machine `labN` at `127.0.0.(10+N)`: the cluster is addressed by IP.
fn core(name: &str) -> Core<MemoryStore> {
    let n: u8 = name.trim_start_matches("lab").parse().unwrap_or(0);
    Core::new(
        MemoryStore::default(),
        MachineName::new(name).unwrap(),
        format!("127.0.0.{}:2222", 10 + n),
    )
    .unwrap()
}

fn admin() -> Caller {
    Caller {
        user: "admin".into(),
        authority: Authority::All,
        followed: None,
        break_glass: None,
        origin_kind: crate::model::OriginKind::Claimed,
    }
}

fn node(text: &str) -> Node {
    let doc: kdl::KdlDocument = text.parse().unwrap();
    Node::from_kdl(&doc.nodes()[0])
}

fn host_key() -> String {
    russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
        .unwrap()
        .public_key()
        .to_openssh()
        .unwrap()
}

fn member() -> Core<MemoryStore> {
    let mut c = core("lab1");
    c.bootstrap(&[node("dns { server \"10.0.0.53\" }")], 1)
        .unwrap();
    c.create_cluster(&admin(), "americas", &Catalogue::builtin(), 2)
        .unwrap();
    c
}

fn request(machine: &str, key: &str) -> JoinRequest {
    JoinRequest {
        machine: MachineName::new(machine).unwrap(),
        host_key: key.to_owned(),
        serial: "S2".into(),
        peer: "127.0.0.12:2222".into(),
        group: None,
        machine_sections: vec![
            node("interfaces { interface \"Data1\" address=\"10.1.0.2/24\" hostname=\"lab2\" }"),
            node("dns { server \"192.0.2.1\" }"),
        ],
        strata_version: Some("1.4.2".into()),
        appliance_version: Some("15.0.1-416".into()),
    }
}

/// lab1's own facts, running Strata `version`.
fn own(version: &str) -> OwnFacts {
    OwnFacts {
        host_key: host_key(),
        peer: "127.0.0.11:2222".into(),
        serial: "S1".into(),
        strata_version: version.into(),
        appliance_version: None,
    }
}

#[test]
fn a_joiner_takes_the_cluster_and_keeps_only_its_machine_only_sections() {
    let mut m = member();
    let key = host_key();
    // The member has not recorded its own host key yet (the cluster's first join):
    // the change set that admits the joiner records it, so the joiner can reach it.
    let own = own("1.4.0");
    let (cs, notes) = m
        .admit(
            &admin(),
            &request("lab2", &key),
            &Proof::Passphrase,
            &Catalogue::builtin(),
            Some(&own),
            3,
        )
        .unwrap();
    assert!(notes.is_empty());
    let keys: Vec<String> = cs.writes.keys().map(Key::to_string).collect();
    assert_eq!(
        keys,
        ["@machine:lab1", "@machine:lab2", "machine:lab2/interfaces"]
    );
    let mut j = core("lab2");
    j.bootstrap(&[node("dns { server \"192.0.2.1\" }")], 1)
        .unwrap();
    j.take_cluster(m.store.change_sets().unwrap(), 4).unwrap();
    let live = j.live().unwrap();
    assert_eq!(cluster_name(&live).as_deref(), Some("americas"));
    let me = MachineName::new("lab2").unwrap();
    let info = membership_of(&live, &me).unwrap();
    assert_eq!(info.host_key.as_deref(), Some(key.as_str()));
    assert_eq!(info.peer_address(), "127.0.0.12:2222");
    assert_eq!(info.address, "127.0.0.12");
    assert_eq!(
        (
            info.strata_version.as_deref(),
            info.appliance_version.as_deref()
        ),
        (Some("1.4.2"), Some("15.0.1-416")),
        "the joiner's versions are recorded"
    );
    let lab1 = membership_of(&live, &MachineName::new("lab1").unwrap()).unwrap();
    assert_eq!(
        lab1.strata_version.as_deref(),
        Some("1.4.0"),
        "and the member's"
    );
    assert!(
        !live.contains_key(&"machine:lab2/dns".parse().unwrap()),
        "its standalone dns gave way to the cluster's"
    );
    // A machine already in a cluster does not take another.
    assert!(j.take_cluster(Vec::new(), 5).is_err());
}

#[test]
fn a_joiner_of_another_strata_release_is_refused_naming_both_versions() {
    let mut m = member();
    let before = m.store.change_sets().unwrap().len();
    let admit = |m: &mut Core<MemoryStore>, version: Option<&str>| {
        let mut req = request("lab2", &host_key());
        req.strata_version = version.map(str::to_owned);
        m.admit(
            &admin(),
            &req,
            &Proof::Passphrase,
            &Catalogue::builtin(),
            Some(&own("1.4.2")),
            3,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let why = admit(&mut m, Some("1.5.0")).unwrap_err();
    assert!(
        why.contains("lab2 runs 1.5.0, lab1 1.4.2"),
        "both machines, both versions: {why}"
    );
    let why = admit(&mut m, None).unwrap_err();
    assert!(why.contains("does not say which Strata version"), "{why}");
    assert_eq!(
        m.store.change_sets().unwrap().len(),
        before,
        "nothing was written"
    );
    // The other side of the window: a patch release of the same one joins.
    admit(&mut m, Some("1.4.9")).unwrap();
}

#[test]
fn a_join_past_the_cluster_s_machine_threshold_says_what_to_watch() {
    let mut m = member();
    let mut w = Writes::new();
    w.insert(
        "cluster/cluster-mesh".parse().unwrap(),
        Some(EntryValue::Section(node(
            "cluster-mesh ping-interval-ms=2000 max-machines-warning=2",
        ))),
    );
    let base = w.keys().map(|k| (k.clone(), None)).collect();
    let meta = m.meta(&admin(), "admin", Source::Cli, "mesh".into());
    m.propose(w, base, meta, 3).unwrap();
    let own = own("1.4.2");
    let admit = |m: &mut Core<MemoryStore>, name: &str, at: u64| {
        let mut req = request(name, &host_key());
        req.peer = format!("127.0.0.{}:2222", 10 + at);
        m.admit(
            &admin(),
            &req,
            &Proof::Passphrase,
            &Catalogue::builtin(),
            Some(&own),
            at,
        )
        .unwrap()
        .1
    };
    // lab1 and lab2: two, not more than two.
    assert_eq!(admit(&mut m, "lab2", 4), Vec::<String>::new());
    let notes = admit(&mut m, "lab3", 5);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(
            "the cluster has 3 machines, more than 2 (cluster-mesh max-machines-warning=2)"
        ),
        "{notes:?}"
    );
}

#[test]
fn a_joiner_addressed_the_other_way_is_refused() {
    let mut m = member();
    let before = m.store.change_sets().unwrap().len();
    let mut req = request("lab2", &host_key());
    req.peer = "localhost:2222".into();
    let why = m
        .admit(
            &admin(),
            &req,
            &Proof::Passphrase,
            &Catalogue::builtin(),
            None,
            3,
        )
        .unwrap_err()
        .to_string();
    assert!(
        why.contains("lab2 would join at localhost, a hostname, but the cluster's machines are addressed by IP addresses (lab1 at 127.0.0.11)"),
        "{why}"
    );
    assert_eq!(
        m.store.change_sets().unwrap().len(),
        before,
        "nothing was written"
    );
    // The creator's address with a port is its address, dialled at that port.
    let lab1 = MachineName::new("lab1").unwrap();
    let live = m.live().unwrap();
    let info = membership_of(&live, &lab1).unwrap();
    assert_eq!(
        (info.address.as_str(), info.peer_address()),
        ("127.0.0.11", "127.0.0.11:2222")
    );
}

#[test]
fn a_pre_shared_join_needs_the_registered_key_and_serial() {
    let mut m = member();
    let key = host_key();
    let lab2 = MachineName::new("lab2").unwrap();
    let proof = Proof::PreShared(lab2.clone());
    let refused = m
        .admit(
            &admin(),
            &request("lab2", &key),
            &proof,
            &Catalogue::builtin(),
            None,
            3,
        )
        .unwrap_err();
    assert!(refused.to_string().contains("not registered"), "{refused}");
    let mut w = Writes::new();
    w.insert(
        Key::Pending(lab2.clone()),
        Some(EntryValue::Pending(crate::model::PendingJoin {
            serial: "OTHER".into(),
            host_key: key.clone(),
        })),
    );
    let base = w.keys().map(|k| (k.clone(), None)).collect();
    let meta = m.meta(&admin(), "admin", Source::Cli, "prepjoin".into());
    m.propose(w, base, meta, 3).unwrap();
    let refused = m
        .admit(
            &admin(),
            &request("lab2", &key),
            &proof,
            &Catalogue::builtin(),
            None,
            4,
        )
        .unwrap_err();
    assert!(refused.to_string().contains("serial OTHER"), "{refused}");
    let other = host_key();
    let refused = m
        .admit(
            &admin(),
            &request("lab2", &other),
            &proof,
            &Catalogue::builtin(),
            None,
            4,
        )
        .unwrap_err();
    assert!(
        refused.to_string().contains("not the one registered"),
        "{refused}"
    );
}

#[test]
fn a_removed_member_is_forgotten_and_leaves_with_its_flattened_config() {
    let mut m = member();
    let key = host_key();
    m.admit(
        &admin(),
        &request("lab2", &key),
        &Proof::Passphrase,
        &Catalogue::builtin(),
        None,
        3,
    )
    .unwrap();
    let lab2 = MachineName::new("lab2").unwrap();
    let live = m.live().unwrap();
    let flat = flattened(&live, &lab2, &Catalogue::builtin());
    let names: Vec<&str> = flat.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["dns", "interfaces"],
        "the cluster's dns, its own interfaces"
    );
    let cs = m.remove_member(&admin(), &lab2, 5).unwrap();
    let keys: Vec<String> = cs.writes.keys().map(Key::to_string).collect();
    assert_eq!(keys, ["@machine:lab2", "machine:lab2/interfaces"]);
    assert!(membership_of(&m.live().unwrap(), &lab2).is_none());

    let mut j = core("lab2");
    j.take_cluster(m.store.change_sets().unwrap(), 6).unwrap();
    j.leave(flat, 7).unwrap();
    let live = j.live().unwrap();
    assert_eq!(cluster_name(&live), None, "standalone");
    let keys: Vec<String> = live.keys().map(Key::to_string).collect();
    assert_eq!(keys, ["machine:lab2/dns", "machine:lab2/interfaces"]);
}

#[test]
fn disconnecting_is_a_change_to_the_membership_made_once() {
    let mut m = member();
    let lab1 = MachineName::new("lab1").unwrap();
    assert!(
        m.set_disconnected(&admin(), &lab1, true, 3)
            .unwrap()
            .is_some()
    );
    assert!(
        m.set_disconnected(&admin(), &lab1, true, 4)
            .unwrap()
            .is_none()
    );
    assert!(
        membership_of(&m.live().unwrap(), &lab1)
            .unwrap()
            .disconnected
    );
    assert!(
        m.set_disconnected(&admin(), &lab1, false, 5)
            .unwrap()
            .is_some()
    );
    let nobody = MachineName::new("nobody").unwrap();
    assert!(m.set_disconnected(&admin(), &nobody, true, 6).is_err());
}

#[test]
fn a_machine_that_leaves_keeps_its_secrets_decrypted_and_no_identity() {
    let m = member();
    let lab1 = MachineName::new("lab1").unwrap();
    let mut live = m.live().unwrap();
    let all = crate::secret::identity::all(&live);
    assert_eq!(all.len(), 1, "the cluster's identity, made at create");
    let recipient = all[0].1.recipient.parse().unwrap();
    let text = crate::secret::encrypt("hunter2", &[recipient]).unwrap();
    let mut entry = live[&Key::Cluster].clone();
    entry.value = Some(EntryValue::Section(node(&format!(
        r#"ldap-servers {{ profile "corp" base="dc=x" bind-password="{}" {{ hosts "l1"; }} }}"#,
        text.trim().replace('\n', "\\n")
    ))));
    live.insert("cluster/ldap-servers".parse().unwrap(), entry);
    let flat = flattened(&live, &lab1, &Catalogue::builtin());
    let ldap = flat.iter().find(|n| n.name == "ldap-servers").unwrap();
    assert_eq!(
        ldap.children[0].prop("bind-password"),
        Some(&crate::model::Value::String("hunter2".into()))
    );
}

#[test]
fn a_renamed_member_keeps_its_membership_and_sections_under_the_new_name() {
    let mut m = member();
    let key = host_key();
    m.admit(
        &admin(),
        &request("lab2", &key),
        &Proof::Passphrase,
        &Catalogue::builtin(),
        None,
        3,
    )
    .unwrap();
    let (lab2, lab9) = (
        MachineName::new("lab2").unwrap(),
        MachineName::new("lab9").unwrap(),
    );
    let before = membership_of(&m.live().unwrap(), &lab2).unwrap().clone();
    let cs = m
        .rename_member(&admin(), &lab2, &lab9, None, 4)
        .unwrap()
        .unwrap();
    let keys: Vec<String> = cs.writes.keys().map(Key::to_string).collect();
    assert_eq!(
        keys,
        [
            "@machine:lab2",
            "@machine:lab9",
            "machine:lab2/interfaces",
            "machine:lab9/interfaces"
        ]
    );
    let live = m.live().unwrap();
    assert!(membership_of(&live, &lab2).is_none());
    let after = membership_of(&live, &lab9).cloned().map(|m| Membership {
        facts_at: before.facts_at.clone(),
        ..m
    });
    assert_eq!(after, Some(before), "the same facts, stamped by the rename");
    assert!(live.contains_key(&"machine:lab9/interfaces".parse::<Key>().unwrap()));

    // lab2's own agent: the change set renames it, it does not remove it.
    let pk = russh::keys::PublicKey::from_openssh(&key).unwrap();
    assert_eq!(
        crate::cluster::rename::renames(&cs, &lab2, &pk),
        Some(lab9.clone())
    );
    assert_eq!(
        crate::cluster::rename::renamed_to(&live, &lab2, &pk),
        Some(lab9.clone())
    );
    assert_eq!(crate::cluster::rename::renamed_to(&live, &lab9, &pk), None);
    let other = russh::keys::PublicKey::from_openssh(&host_key()).unwrap();
    assert_eq!(crate::cluster::rename::renames(&cs, &lab2, &other), None);

    // Again: nothing to do. Onto a member, or from a stranger: refused.
    assert!(
        m.rename_member(&admin(), &lab2, &lab9, None, 5)
            .unwrap()
            .is_none()
    );
    let lab1 = MachineName::new("lab1").unwrap();
    let taken = m
        .rename_member(&admin(), &lab9, &lab1, None, 6)
        .unwrap_err();
    assert!(
        taken
            .to_string()
            .contains("a member of the cluster already"),
        "{taken}"
    );
    let nobody = MachineName::new("nobody").unwrap();
    let unknown = m
        .rename_member(&admin(), &nobody, &lab2, None, 7)
        .unwrap_err();
    assert!(unknown.to_string().contains("not a member"), "{unknown}");

    // The address alone.
    let cs = m
        .rename_member(&admin(), &lab9, &lab9, Some("127.0.0.19"), 8)
        .unwrap()
        .unwrap();
    assert_eq!(cs.writes.len(), 1);
    assert_eq!(
        membership_of(&m.live().unwrap(), &lab9).unwrap().address,
        "127.0.0.19"
    );
}
