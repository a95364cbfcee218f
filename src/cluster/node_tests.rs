//! The node's tests: the pipeline after commits and merges, users and catalogue
//! refreshed from the store, the membership hook.

use super::*;
use crate::cluster::applier::MemoryApplier;
use crate::cluster::auth::Authed;
use crate::cluster::users::Role;
use crate::plan::Origin;
use crate::protocol::Request;
use crate::state::{MemoryStore, Source, tests::writes};

/// A started node of machine `lab1` on an in-memory store and applier.
pub(crate) fn node() -> Node<MemoryStore, MemoryApplier> {
    let key =
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
    let core = Core::new(
        MemoryStore::default(),
        MachineName::new("lab1").unwrap(),
        "10.1.0.1".into(),
    )
    .unwrap();
    let node = Node::new(
        core,
        Auth::new(key.public_key().clone(), 0),
        MemoryApplier::default(),
    );
    node.start();
    node
}

fn admin() -> Authed {
    Authed::user("root", Role::Administrator)
}

fn apply(node: &Node<MemoryStore, MemoryApplier>, pairs: &[(&str, Option<&str>)]) -> Response {
    let w = writes(pairs);
    let live = node.live().unwrap();
    let base = w
        .keys()
        .map(|k| (k.clone(), live.get(k).map(|e| e.stamp.version.clone())))
        .collect();
    let origin = Origin {
        source: Source::Cli,
        author: "ada".into(),
        message: "m".into(),
    };
    node.handle(
        &admin(),
        Request::Apply {
            writes: w,
            base,
            origin,
            override_follower: false,
            break_glass: None,
            confirm_within_ms: None,
        },
    )
}

#[test]
fn every_commit_runs_the_result_with_the_stored_catalogue() {
    let n = node();
    // At start the factory defaults of the built-in catalogue run.
    assert!(n.applier.current.lock().unwrap().contains_key("listeners"));
    let r = apply(
        &n,
        &[
            ("@group:Main_Group", Some("group Main_Group")),
            ("@machine:lab1", Some("machine lab1 group=Main_Group")),
            ("machine:lab1/dns", Some("dns { server \"10.0.0.53\"; }")),
            ("#catalogue", Some("builtin-sections dns interfaces")),
        ],
    );
    let Response::Applied { running, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        running.written,
        ["dns"],
        "interfaces keeps its factory default"
    );
    assert!(running.removed.contains(&"listeners".to_owned()));
    let current = n.applier.current.lock().unwrap().clone();
    assert_eq!(current.keys().collect::<Vec<_>>(), ["dns", "interfaces"]);
    assert_eq!(current["dns"], "dns {\n    server \"10.0.0.53\"\n}\n");
    assert_eq!(
        n.catalogue().names().collect::<Vec<_>>(),
        ["dns", "interfaces"]
    );
}

#[test]
fn the_users_section_decides_who_logs_in_after_the_commit() {
    let n = node();
    let key =
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
    let public = key.public_key().to_openssh().unwrap();
    assert_eq!(n.auth.authorize_key("ada", key.public_key()), None);
    let users = format!("users {{ user \"ada\" role=\"operator\" {{ key \"{public}\"; }} }}");
    let r = apply(
        &n,
        &[
            ("@cluster", Some("cluster c")),
            ("cluster/users", Some(&users)),
        ],
    );
    assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    assert_eq!(
        n.auth.authorize_key("ada", key.public_key()),
        Some(Role::Operator)
    );
}

#[test]
fn the_membership_hook_hears_the_cluster_after_every_change() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let key =
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
    let core = Core::new(
        MemoryStore::default(),
        MachineName::new("lab1").unwrap(),
        "10.1.0.1".into(),
    )
    .unwrap();
    let n = Node::new(
        core,
        Auth::new(key.public_key().clone(), 0),
        MemoryApplier::default(),
    )
    .with_change_hook(Box::new(move |c| {
        log.lock().unwrap().push(c.map(str::to_owned));
    }));
    n.start();
    let r = apply(
        &n,
        &[
            ("@cluster", Some("cluster americas")),
            ("@group:Main_Group", Some("group Main_Group")),
            ("@machine:lab1", Some("machine lab1 group=Main_Group")),
        ],
    );
    assert!(matches!(r, Response::Applied { .. }), "{r:?}");
    // Removed by a peer: it leaves, and its store names no cluster any more.
    let mut gone = crate::state::tests::remote(
        crate::state::wall_ms() + 1000,
        "lab2",
        &[("@machine:lab1", None)],
    );
    gone.seq = 0;
    n.merge_from_peer(gone, crate::state::wall_ms()).unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        [None, Some("americas".to_owned()), None]
    );
}

#[test]
fn a_merged_change_set_goes_through_the_same_pipeline() {
    let n = node();
    let cs = crate::state::tests::remote(
        crate::state::wall_ms(),
        "lab2",
        &[
            ("@machine:lab1", Some("machine lab1 group=Main_Group")),
            ("cluster/dns", Some("dns { server \"10.9.9.9\"; }")),
        ],
    );
    let report = n.merge(cs.clone(), crate::state::wall_ms()).unwrap();
    assert_eq!(report.written, ["dns"]);
    assert!(n.applier.current.lock().unwrap()["dns"].contains("10.9.9.9"));
    // Merging it again changes nothing and runs nothing.
    let runs = *n.applier.runs.lock().unwrap();
    assert!(
        n.merge(cs, crate::state::wall_ms())
            .unwrap()
            .written
            .is_empty()
    );
    assert_eq!(*n.applier.runs.lock().unwrap(), runs);
}
