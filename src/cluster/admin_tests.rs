//! Tests of cluster administration on a [`MemoryStore`]: through the core for what the
//! change sets hold, through a node for roles and passphrase logins.

use super::*;
use crate::cluster::applier::MemoryApplier;
use crate::cluster::auth::{Auth, Authed, Checked};
use crate::cluster::caller::Authority;
use crate::cluster::node::Node as AgentNode;
use crate::cluster::users::{Role, hash_passphrase, parse_users, verify_passphrase};
use crate::plan::Origin;
use crate::protocol::{Request, Response, Secret};
use crate::schema::Catalogue;
use crate::state::MemoryStore;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdZ7qJ8HiMf5Fxe6ThYtAczQh0wkZ7iMdQ1j6IcFuQ9 lab6@example";

fn admin() -> Caller {
    Caller {
        user: "root".into(),
        authority: Authority::All,
        followed: None,
        break_glass: None,
        origin_kind: crate::model::OriginKind::Claimed,
    }
}

fn key(text: &str) -> Key {
    text.parse().unwrap()
}

fn group(name: &str) -> GroupName {
    GroupName::new(name).unwrap()
}

fn machine(name: &str) -> MachineName {
    MachineName::new(name).unwrap()
}

/// A cluster `americas` on lab1 (Main_Group), with group Paris holding lab3 (joined,
/// with a host key and serial) and defining `dns`, and a `users` section with `ada`.
fn cluster() -> Core<MemoryStore> {
    let mut c = Core::new(MemoryStore::default(), machine("lab1"), "10.1.0.1".into()).unwrap();
    c.create_cluster(&admin(), "americas", &Catalogue::builtin(), 1)
        .unwrap();
    let pairs = [
        ("@group:Paris", "group Paris"),
        (
            "@machine:lab3",
            "machine lab3 address=\"10.1.0.3\" group=Paris serial=S3 host-key=\"ssh-ed25519 AAAA\" peer=\"10.1.0.3:2222\"",
        ),
        ("group:Paris/dns", "dns { server \"192.0.2.53\"; }"),
        ("group:Paris/ntp", "ntp { server \"ntp.paris\"; }"),
        (
            "cluster/users",
            "users { user \"ada\" role=\"operator\" { key \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdZ7qJ8HiMf5Fxe6ThYtAczQh0wkZ7iMdQ1j6IcFuQ9\"; }; }",
        ),
    ];
    let writes: Writes = pairs
        .iter()
        .map(|(k, v)| {
            (
                key(k),
                Some(crate::config::value_from_text(&key(k), v).unwrap()),
            )
        })
        .collect();
    let base = writes.keys().map(|k| (k.clone(), None)).collect();
    let origin = Origin {
        source: Source::Cli,
        author: "ada".into(),
        message: "setup".into(),
    };
    c.apply(&admin(), writes, base, &origin, 2)
        .unwrap()
        .unwrap();
    c
}

fn value(c: &Core<MemoryStore>, k: &str) -> Option<EntryValue> {
    c.live().unwrap().get(&key(k)).and_then(|e| e.value.clone())
}

fn refusal(r: Result<Option<ChangeSet>, Refusal>) -> String {
    match r {
        Err(Refusal::Invalid { message, help }) => {
            format!("{message} | {}", help.unwrap_or_default())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn passwd_sets_the_admin_hash_and_keeps_every_other_user_and_key() {
    let mut c = cluster();
    let hash = hash_passphrase("s3cret pass").unwrap();
    let cs = c
        .cluster_passwd(&admin(), ADMIN_USER, &hash, 3)
        .unwrap()
        .unwrap();
    assert_eq!(cs.meta.message, "cluster passwd");
    assert_eq!(cs.meta.source, Source::Cli);
    let Some(EntryValue::Section(users)) = value(&c, "cluster/users") else {
        panic!("no users section")
    };
    let users = parse_users(&users).unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["ada", "admin"]);
    assert_eq!(users[0].keys.len(), 1, "ada keeps her key");
    assert_eq!(users[1].role, Role::Administrator);
    assert!(verify_passphrase(
        "s3cret pass",
        users[1].passphrase_hash.as_deref().unwrap()
    ));

    // Again, on an admin that has a key and another role: the key stays, the role is fixed.
    let text = format!("users {{ user \"admin\" role=\"operator\" {{ key \"{KEY}\"; }}; }}");
    let writes = Writes::from([(
        key("cluster/users"),
        Some(crate::config::value_from_text(&key("cluster/users"), &text).unwrap()),
    )]);
    let view = c.live().unwrap();
    c.commit_admin(&admin(), writes, &view, "m".into(), 4)
        .unwrap();
    let other = hash_passphrase("another").unwrap();
    c.cluster_passwd(&admin(), ADMIN_USER, &other, 5)
        .unwrap()
        .unwrap();
    let Some(EntryValue::Section(users)) = value(&c, "cluster/users") else {
        panic!("no users section")
    };
    let users = parse_users(&users).unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].role, users[0].keys.len()),
        (Role::Administrator, 1)
    );
    assert!(verify_passphrase(
        "another",
        users[0].passphrase_hash.as_deref().unwrap()
    ));
}

#[test]
fn passwd_sets_a_declared_user_s_hash_and_refuses_an_undeclared_one() {
    let mut c = cluster();
    let hash = hash_passphrase("ada's").unwrap();
    let cs = c
        .cluster_passwd(&admin(), "ada", &hash, 3)
        .unwrap()
        .unwrap();
    assert_eq!(cs.meta.message, "cluster passwd ada");
    let Some(EntryValue::Section(section)) = value(&c, "cluster/users") else {
        panic!("no users section")
    };
    let users = parse_users(&section).unwrap();
    let ada = users.iter().find(|u| u.name == "ada").unwrap();
    assert_eq!(
        (ada.role, ada.keys.len()),
        (Role::Operator, 1),
        "role and key stay"
    );
    assert!(verify_passphrase(
        "ada's",
        ada.passphrase_hash.as_deref().unwrap()
    ));
    let why = refusal(c.cluster_passwd(&admin(), "eve", &hash, 4));
    assert!(
        why.contains("user `eve` is not in the cluster's users section")
            && why.contains("git owns who the users are"),
        "{why}"
    );
}

#[test]
fn passwd_creates_the_users_section_and_needs_a_cluster() {
    let mut standalone =
        Core::new(MemoryStore::default(), machine("lab1"), "10.1.0.1".into()).unwrap();
    let hash = hash_passphrase("x").unwrap();
    let why = refusal(standalone.cluster_passwd(&admin(), ADMIN_USER, &hash, 1));
    assert!(
        why.contains("not in a cluster") && why.contains("cluster create"),
        "{why}"
    );
    let mut c = Core::new(MemoryStore::default(), machine("lab1"), "10.1.0.1".into()).unwrap();
    c.create_cluster(&admin(), "americas", &Catalogue::builtin(), 1)
        .unwrap();
    c.cluster_passwd(&admin(), ADMIN_USER, &hash, 2)
        .unwrap()
        .unwrap();
    let users = value(&c, "cluster/users").unwrap();
    let text = users.to_text(&key("cluster/users"));
    assert!(
        text.starts_with(
            "users {\n    user admin full-name=Administrator passphrase-hash=\"$argon2id$"
        ),
        "{text}"
    );
    assert!(text.contains("role=administrator"), "{text}");
}

#[test]
fn setname_and_addgroup_refuse_what_makes_no_sense() {
    let mut c = cluster();
    let cs = c.set_name(&admin(), "emea", 3).unwrap().unwrap();
    assert_eq!(cs.meta.message, "cluster setname emea (was americas)");
    assert_eq!(
        value(&c, "@cluster"),
        Some(EntryValue::Cluster {
            name: "emea".into()
        })
    );
    assert!(
        c.set_name(&admin(), "emea", 4).unwrap().is_none(),
        "already so named"
    );
    assert!(refusal(c.set_name(&admin(), "  ", 4)).contains("needs a name"));
    assert!(refusal(c.set_name(&admin(), " x", 4)).contains("spaces around it"));

    c.add_group(&admin(), &group("Rome"), 5).unwrap().unwrap();
    assert_eq!(value(&c, "@group:Rome"), Some(EntryValue::Group));
    assert!(
        refusal(c.add_group(&admin(), &group("Rome"), 6)).contains("group `Rome` already exists")
    );
    // An operator's authority never writes membership, whatever the dispatch lets by.
    let operator = Caller {
        user: "ada".into(),
        authority: Authority::NoMembership,
        followed: None,
        break_glass: None,
        origin_kind: crate::model::OriginKind::Claimed,
    };
    assert!(matches!(
        c.add_group(&operator, &group("Oslo"), 7),
        Err(Refusal::Denied(_))
    ));
}

#[test]
fn setgroup_keeps_the_rest_of_the_membership() {
    let mut c = cluster();
    let before = value(&c, "@machine:lab3");
    let cs = c
        .set_group(&admin(), &machine("lab3"), &group("Main_Group"), 3)
        .unwrap()
        .unwrap();
    assert_eq!(
        cs.meta.message,
        "cluster setgroup lab3 Main_Group (was Paris)"
    );
    let (Some(EntryValue::Machine(was)), Some(EntryValue::Machine(now))) =
        (before, value(&c, "@machine:lab3"))
    else {
        panic!("no membership")
    };
    assert_eq!(
        now,
        Membership {
            group: group("Main_Group"),
            ..was
        }
    );
    assert!(
        c.set_group(&admin(), &machine("lab3"), &group("Main_Group"), 4)
            .unwrap()
            .is_none()
    );
    let why = refusal(c.set_group(&admin(), &machine("lab9"), &group("Paris"), 4));
    assert!(
        why.contains("`lab9` is not a member") && why.contains("lab1, lab3"),
        "{why}"
    );
    let why = refusal(c.set_group(&admin(), &machine("lab3"), &group("Oslo"), 4));
    assert!(
        why.contains("no group `Oslo`") && why.contains("Main_Group, Paris"),
        "{why}"
    );
}

#[test]
fn renamegroup_moves_machines_and_sections_in_one_change_set() {
    let mut c = cluster();
    let cs = c
        .rename_group(&admin(), &group("Paris"), &group("London"), 3)
        .unwrap()
        .unwrap();
    let keys: Vec<String> = cs.writes.keys().map(Key::to_string).collect();
    assert_eq!(
        keys,
        [
            "@group:London",
            "@group:Paris",
            "@machine:lab3",
            "group:London/dns",
            "group:London/ntp",
            "group:Paris/dns",
            "group:Paris/ntp"
        ]
    );
    assert_eq!(
        cs.meta.message,
        "cluster renamegroup Paris London (machines: lab3; sections: dns, ntp)"
    );
    assert_eq!(value(&c, "@group:Paris"), None);
    assert_eq!(value(&c, "group:Paris/dns"), None);
    let dns = value(&c, "group:London/dns").unwrap();
    assert!(dns.to_text(&key("group:London/dns")).contains("192.0.2.53"));
    let Some(EntryValue::Machine(lab3)) = value(&c, "@machine:lab3") else {
        panic!("no lab3")
    };
    assert_eq!(
        (lab3.group.as_str(), lab3.serial.as_deref()),
        ("London", Some("S3"))
    );
    assert!(lab3.joined() && lab3.peer.as_deref() == Some("10.1.0.3:2222"));
    let why = refusal(c.rename_group(&admin(), &group("London"), &group("Main_Group"), 4));
    assert!(why.contains("`Main_Group` already exists"), "{why}");
    assert!(
        refusal(c.rename_group(&admin(), &group("Paris"), &group("X"), 4))
            .contains("no group `Paris`")
    );
}

#[test]
fn deletegroup_needs_move_to_for_machines_and_never_takes_the_last_group() {
    let mut c = cluster();
    let why = refusal(c.delete_group(&admin(), &group("Paris"), None, 3));
    assert!(
        why.contains("still has machines: lab3") && why.contains("--move-to"),
        "{why}"
    );
    let why = refusal(c.delete_group(&admin(), &group("Paris"), Some(&group("Paris")), 3));
    assert!(why.contains("itself"), "{why}");
    assert!(
        refusal(c.delete_group(&admin(), &group("Paris"), Some(&group("Oslo")), 3))
            .contains("no group `Oslo`")
    );
    let cs = c
        .delete_group(&admin(), &group("Paris"), Some(&group("Main_Group")), 3)
        .unwrap()
        .unwrap();
    assert_eq!(
        cs.meta.message,
        "cluster deletegroup Paris (machines moved to Main_Group: lab3; sections removed: dns, ntp)"
    );
    assert_eq!(value(&c, "group:Paris/ntp"), None);
    let Some(EntryValue::Machine(lab3)) = value(&c, "@machine:lab3") else {
        panic!("no lab3")
    };
    assert_eq!(lab3.group.as_str(), "Main_Group");
    let why = refusal(c.delete_group(&admin(), &group("Main_Group"), None, 4));
    assert!(
        why.contains("only group") && why.contains("addgroup"),
        "{why}"
    );
    // An empty group goes without --move-to.
    c.add_group(&admin(), &group("Rome"), 5).unwrap();
    let cs = c
        .delete_group(&admin(), &group("Rome"), None, 6)
        .unwrap()
        .unwrap();
    assert_eq!(
        cs.meta.message,
        "cluster deletegroup Rome (machines moved: none; sections removed: none)"
    );
}

#[test]
fn prepjoin_round_trip_and_what_it_refuses() {
    let mut c = cluster();
    c.prepjoin_add(&admin(), &machine("lab7"), "S7", KEY, 3)
        .unwrap()
        .unwrap();
    c.prepjoin_add(&admin(), &machine("lab6"), " S6 ", &format!(" {KEY}\n"), 4)
        .unwrap()
        .unwrap();
    assert!(
        c.prepjoin_add(&admin(), &machine("lab6"), "S6", KEY, 5)
            .unwrap()
            .is_none()
    );
    let list = c.prepjoin_list().unwrap();
    let hosts: Vec<(&str, &str)> = list
        .iter()
        .map(|e| (e.host.as_str(), e.serial.as_str()))
        .collect();
    assert_eq!(hosts, [("lab6", "S6"), ("lab7", "S7")]);
    assert_eq!(list[0].key, KEY);
    let why = refusal(c.prepjoin_add(&admin(), &machine("lab8"), "S8", "not a key", 5));
    assert!(
        why.contains("not an OpenSSH public key") && why.contains("prepjoin print"),
        "{why}"
    );
    assert!(refusal(c.prepjoin_add(&admin(), &machine("lab8"), "", KEY, 5)).contains("no serial"));
    let why = refusal(c.prepjoin_add(&admin(), &machine("lab3"), "S3", KEY, 5));
    assert!(why.contains("lab3 is already a member"), "{why}");
    c.prepjoin_delete(&admin(), &machine("lab7"), 6)
        .unwrap()
        .unwrap();
    assert_eq!(c.prepjoin_list().unwrap().len(), 1);
    assert!(
        refusal(c.prepjoin_delete(&admin(), &machine("lab7"), 7))
            .contains("lab7 is not registered")
    );
}

#[test]
fn an_apply_cannot_slip_a_bad_pending_join_past_the_checks() {
    let mut c = cluster();
    let origin = Origin {
        source: Source::Cli,
        author: "ada".into(),
        message: "m".into(),
    };
    for (host, serial, host_key, why) in [
        ("lab8", "S8", "garbage", "not an OpenSSH public key"),
        ("lab8", " ", KEY, "no serial number"),
        ("lab3", "S3", KEY, "already a member"),
    ] {
        let k = Key::Pending(machine(host));
        let v = EntryValue::Pending(PendingJoin {
            serial: serial.into(),
            host_key: host_key.into(),
        });
        let r = c.apply(
            &admin(),
            Writes::from([(k.clone(), Some(v))]),
            [(k, None)].into(),
            &origin,
            3,
        );
        let message = r.unwrap_err().to_string();
        assert!(message.contains(why), "{message}");
    }
}

fn node() -> AgentNode<MemoryStore, MemoryApplier> {
    let local =
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
    let n = AgentNode::new(
        cluster(),
        Auth::new(local.public_key().clone(), 0),
        MemoryApplier::default(),
    );
    n.start();
    n
}

#[tokio::test]
async fn passwd_through_the_node_lets_admin_log_in_and_other_roles_are_denied() {
    let n = node();
    let operator = Authed::user("ada", Role::Operator);
    for request in [
        Request::ClusterPasswd {
            user: None,
            passphrase: Secret("p".into()),
        },
        Request::SetName { name: "x".into() },
        Request::AddGroup {
            name: group("Oslo"),
        },
        Request::DeleteGroup {
            name: group("Paris"),
            move_to: None,
        },
        Request::PrepjoinAdd {
            host: machine("lab6"),
            serial: "S".into(),
            key: KEY.into(),
        },
    ] {
        let r = n.handle(&operator, request);
        assert!(
            matches!(&r, Response::Denied { message } if message.starts_with("user `ada` (operator) may not ")),
            "{r:?}"
        );
    }
    let root = Authed::user("root", Role::Administrator);
    let r = n.handle(
        &root,
        Request::ClusterPasswd {
            user: None,
            passphrase: Secret(String::new()),
        },
    );
    assert!(
        matches!(&r, Response::Error { message, .. } if message.contains("empty")),
        "{r:?}"
    );
    let r = n.handle(
        &root,
        Request::ClusterPasswd {
            user: None,
            passphrase: Secret("open sesame".into()),
        },
    );
    assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    assert_eq!(
        n.auth.authorize_passphrase("admin", "open sesame").await,
        Checked::Accepted(Role::Administrator)
    );
    assert_eq!(
        n.auth.authorize_passphrase("admin", "wrong").await,
        Checked::Refused
    );
    // Anyone logged in may read the pending-join list.
    let r = n.handle(
        &root,
        Request::PrepjoinAdd {
            host: machine("lab6"),
            serial: "S6".into(),
            key: KEY.into(),
        },
    );
    assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    let guest = Authed::user("gus", Role::Guest);
    let Response::PrepjoinList { entries } = n.handle(&guest, Request::PrepjoinList) else {
        panic!("no list")
    };
    assert_eq!(entries.len(), 1);
}

#[tokio::test]
async fn the_cluster_s_identities_rotate_retire_and_never_reach_a_client() {
    let n = node();
    let root = Authed::user("root", Role::Administrator);
    let operator = Authed::user("ada", Role::Operator);
    let recipients = |who: &Authed| match n.handle(who, Request::SecretRecipients) {
        Response::SecretRecipients { recipients } => recipients,
        other => panic!("{other:?}"),
    };
    let first = recipients(&operator);
    assert_eq!(first.len(), 1, "made with the cluster");
    // An operator may neither rotate nor retire.
    for r in [Request::SecretRotate, Request::SecretRetire] {
        assert!(matches!(n.handle(&operator, r), Response::Denied { .. }));
    }
    assert!(matches!(
        n.handle(&root, Request::SecretRotate),
        Response::Applied { .. }
    ));
    let two = recipients(&root);
    assert_eq!(two.len(), 2);
    assert!(two[0].current && !two[1].current);
    assert_eq!(two[1].recipient, first[0].recipient);
    // A value encrypted to the old identity still decrypts; after a retire it does not.
    let old = crate::secret::encrypt(
        "hunter2",
        &crate::secret::parse_recipients(&[first[0].recipient.clone()]).unwrap(),
    )
    .unwrap();
    let check = |current_only| match n.handle(
        &operator,
        Request::SecretCheck {
            texts: vec![old.clone()],
            current_only,
        },
    ) {
        Response::SecretChecked { undecryptable } => undecryptable,
        other => panic!("{other:?}"),
    };
    assert_eq!(check(false), Vec::<usize>::new());
    assert_eq!(check(true), [0]);
    // Re-encrypted to the current identity by an administrator, never shown in clear.
    let again = match n.handle(
        &root,
        Request::SecretReencrypt {
            texts: vec![old.clone()],
            also: Vec::new(),
        },
    ) {
        Response::SecretReencrypted { texts } => texts[0].clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(crate::secret::is_encrypted(&again) && !again.contains("hunter2"));
    assert!(matches!(
        n.handle(&root, Request::SecretRetire),
        Response::Applied { .. }
    ));
    assert_eq!(recipients(&root).len(), 1);
    assert_eq!(check(false), [0], "retired");
    // No answer to a client carries an identity.
    for r in [Request::Live, Request::Digests] {
        let text = format!("{:?}", n.handle(&root, r));
        assert!(!text.contains("@identity:"), "{text}");
    }
    let keys: Vec<Key> = recipients(&root)
        .iter()
        .map(|r| crate::secret::identity::key_of(&r.recipient))
        .collect();
    let text = format!("{:?}", n.handle(&root, Request::Entries { keys }));
    assert!(!text.contains("AGE-SECRET-KEY"), "{text}");
    // Its Debug never shows the secret key either.
    let live = n.live().unwrap();
    let dump = format!("{live:?}");
    assert!(dump.contains("ClusterIdentity") && !dump.contains("AGE-SECRET-KEY"));
}
