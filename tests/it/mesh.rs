//! The peer mesh with real agents behind real fault-injecting relays: the seed's example
//! cluster formed by joining (one machine with a pre-shared key), the full mesh, a cut
//! link routed around, an isolated machine alerted once and cleared, removal with the
//! flattened config kept, and every refused join with its logged reason.

use std::time::Duration;

use crate::agent_support::{stderr, stdout};
use crate::cluster_support::{PASSPHRASE, SETTLE, ok};
use crate::mesh_support::{MeshHarness, wait_until};

/// The stdout of a run that must succeed, as JSON.
fn json(out: &std::process::Output) -> serde_json::Value {
    ok(out);
    crate::cluster_support::json(out)
}

/// Machine 1 creates the cluster, with the seed's groups and a fast ping interval (from
/// a working-tree repo that declares only what exists yet), and sets the admin passphrase.
fn create(h: &MeshHarness, tmp: &std::path::Path) -> String {
    ok(&h.strata(1, &["cluster", "create", "americas"]));
    let repo = tmp.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("cluster.kdl"),
        "cluster \"americas\" {\n    cluster-mesh ping-interval-ms=100\n    dns { server \"10.0.0.53\"; }\n}\n\
         group \"Main_Group\"\ngroup \"Paris\"\ngroup \"Rome\" { dns { server \"192.0.2.53\"; } }\n\
         machine \"lab1.example.com\"\n",
    )
    .unwrap();
    ok(&h.strata(
        1,
        &["apply", "--repo", &repo.display().to_string(), "--yes"],
    ));
    let pass = tmp.join("passphrase");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let pass = pass.display().to_string();
    ok(&h.strata(1, &["cluster", "passwd", "--passphrase-file", &pass]));
    pass
}

fn join(h: &MeshHarness, i: usize, via: usize, pass: &str, extra: &[&str]) -> std::process::Output {
    let member = h.machine(via);
    let (addr, fp) = (member.relay.to_string(), member.fingerprint());
    let mut args = vec!["cluster", "join", &addr, "--fingerprint", &fp, "--yes"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--pre-shared") {
        args.extend(["--passphrase-file", pass]);
    }
    h.strata(i, &args)
}

#[test]
fn a_join_pins_the_member_by_a_known_hosts_file() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 2);
    let pass = create(&h, tmp.path());
    let member = h.machine(1);
    let known = tmp.path().join("known_hosts");
    let addr = member.relay.to_string();
    // Another key for the member: refused, naming the fingerprint it saw.
    std::fs::write(
        &known,
        format!(
            "[{}]:{} {}\n",
            member.relay.ip(),
            member.relay.port(),
            h.machine(2).host_public_key()
        ),
    )
    .unwrap();
    let known_arg = known.display().to_string();
    let args = [
        "cluster",
        "join",
        &addr,
        "--known-hosts",
        &known_arg,
        "--passphrase-file",
        &pass,
        "--yes",
    ];
    let out = h.strata(2, &args);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    // Its own key: joined.
    std::fs::write(
        &known,
        format!(
            "[{}]:{} {}\n",
            member.relay.ip(),
            member.relay.port(),
            member.host_public_key()
        ),
    )
    .unwrap();
    ok(&h.strata(2, &args));
    // A file that records nothing for the member says so.
    std::fs::write(&known, "").unwrap();
    let out = h.strata(
        1,
        &[
            "cluster",
            "join",
            "10.9.9.9:2222",
            "--known-hosts",
            &known_arg,
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("records no host key for 10.9.9.9:2222"),
        "{}",
        stderr(&out)
    );
}

/// Every member's own view shows every link up.
fn full_mesh(h: &MeshHarness, members: &[usize]) {
    for &i in members {
        wait_until(
            SETTLE,
            &format!("{} sees a full mesh", h.machine(i).name),
            || {
                let status = json(&h.strata(i, &["cluster", "connstatus", "--format", "json"]));
                let me = &h.machine(i).name;
                let view = status["views"]
                    .as_array()
                    .and_then(|v| v.iter().find(|v| v["machine"] == me.as_str()))
                    .cloned()
                    .unwrap_or_default();
                let links = view["links"].as_array().cloned().unwrap_or_default();
                let up = links.iter().filter(|l| l["up"] == true).count();
                if up == members.len() - 1 {
                    Ok(())
                } else {
                    Err(status.to_string())
                }
            },
        );
    }
}

/// The link `from` → `to` as `from` reports it: (up, via).
fn link(h: &MeshHarness, from: usize, to: usize) -> (bool, Option<String>) {
    let status = json(&h.strata(from, &["cluster", "connstatus", "--format", "json"]));
    let me = h.machine(from).name.clone();
    let other = h.machine(to).name.clone();
    let views = status["views"].as_array().cloned().unwrap_or_default();
    let view = views.iter().find(|v| v["machine"] == me.as_str()).unwrap();
    let l = view["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["to"] == other.as_str())
        .unwrap()
        .clone();
    (l["up"] == true, l["via"].as_str().map(str::to_owned))
}

#[test]
fn six_agents_form_the_seed_example_cluster_and_survive_cuts() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 6);
    let pass = create(&h, tmp.path());
    // Machines 2–5 join with the admin passphrase, through different members.
    let joined = ok(&join(&h, 2, 1, &pass, &[]));
    assert!(
        joined.contains(
            "lab2.example.com joined cluster americas through lab1.example.com, in group Main_Group"
        ),
        "{joined}"
    );
    ok(&join(&h, 3, 2, &pass, &["--group", "Paris"]));
    ok(&join(&h, 4, 1, &pass, &["--group", "Paris"]));
    ok(&join(&h, 5, 3, &pass, &["--group", "Rome"]));
    // Machine 6 with a pre-shared key: registered on machine 2, joined through machine 4
    // (the pending list replicated).
    let print = json(&h.strata(6, &["cluster", "prepjoin", "print", "--format", "json"]));
    let (host, serial, key) = (
        print["host"].as_str().unwrap().to_owned(),
        print["serial"].as_str().unwrap().to_owned(),
        print["key"].as_str().unwrap().to_owned(),
    );
    ok(&h.strata(
        2,
        &[
            "cluster", "prepjoin", "add", &host, "--serial", &serial, "--key", &key,
        ],
    ));
    wait_until(SETTLE, "the pending join reaches machine 4", || {
        let list = ok(&h.strata(4, &["cluster", "prepjoin", "list"]));
        if list.contains(&host) {
            Ok(())
        } else {
            Err(list)
        }
    });
    ok(&join(&h, 6, 4, &pass, &["--pre-shared", "--group", "Rome"]));

    full_mesh(&h, &[1, 2, 3, 4, 5, 6]);
    // The members dial each new one as soon as they learn of it, before it has taken
    // the cluster's state: its login waits for that instead of refusing them.
    for i in 1..=6 {
        let log = h.machine(i).log();
        assert!(!log.contains("login refused"), "lab{i}: {log}");
    }
    let listing = ok(&h.strata(5, &["cluster", "list"]));
    for (group, machines) in [
        ("Main_Group", &["lab1", "lab2"][..]),
        ("Paris", &["lab3", "lab4"][..]),
        ("Rome", &["lab5", "lab6"][..]),
    ] {
        let section = listing.split(&format!("Group {group}:")).nth(1).unwrap();
        let section = section.split("\nGroup ").next().unwrap();
        for m in machines {
            assert!(
                section.contains(&format!("{m}.example.com")),
                "{group}: {listing}"
            );
        }
    }
    assert!(!listing.contains("unreachable"), "{listing}");

    // Cut 1–2: both ends mark the direct link down and route through another member.
    h.relays.cut(1, 2);
    let via = wait_until(SETTLE, "lab1 routes around the cut link", || {
        match link(&h, 1, 2) {
            (false, Some(via)) if via != "lab2.example.com" => Ok(via),
            seen => Err(format!("{seen:?}")),
        }
    });
    // The route may move to another member between the two reads (routes follow the
    // round-trip times, which a loaded machine shifts): any member but lab2 will do.
    let shown = ok(&h.strata(1, &["cluster", "connstatus"]));
    assert!(
        shown.contains("-> lab2.example.com: down, routed via lab")
            && !shown.contains("-> lab2.example.com: down, routed via lab2"),
        "routed around the cut (first seen via {via}): {shown}"
    );
    // A change made on machine 1 reaches machine 2 around the cut.
    ok(&h.strata(1, &["cluster", "addgroup", "Milan"]));
    wait_until(SETTLE, "lab2 gets the change through the route", || {
        let list = ok(&h.strata(2, &["cluster", "list"]));
        if list.contains("Group Milan") {
            Ok(())
        } else {
            Err(list)
        }
    });
    let listing = ok(&h.strata(1, &["cluster", "list"]));
    assert!(
        listing.contains("lab2.example.com (") && listing.contains(": routed"),
        "{listing}"
    );
    h.relays.restore(1, 2);
    wait_until(SETTLE, "the cut link comes back", || match link(&h, 1, 2) {
        (true, _) => Ok(()),
        seen => Err(format!("{seen:?}")),
    });

    // Isolate machine 6: every other member raises the alert once, then clears it.
    h.relays.isolate(6);
    for i in 1..=5 {
        wait_until(SETTLE, &format!("lab{i} alerts on lab6"), || {
            let log = h.machine(i).log();
            let lost = log
                .lines()
                .filter(|l| l.contains("peer unreachable") && l.contains("lab6.example.com"))
                .count();
            if lost >= 1 {
                Ok(lost)
            } else {
                Err(format!("{lost} alerts"))
            }
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    h.relays.heal();
    for i in 1..=5 {
        wait_until(SETTLE, &format!("lab{i} clears the alert on lab6"), || {
            let log = h.machine(i).log();
            let lost = log
                .lines()
                .filter(|l| l.contains("peer unreachable") && l.contains("lab6.example.com"))
                .count();
            let back = log
                .lines()
                .filter(|l| l.contains("peer reachable") && l.contains("lab6.example.com"))
                .count();
            // Lost once, and back once.
            if lost == 1 && back == 1 {
                Ok(())
            } else {
                Err(format!("lost {lost}, back {back}"))
            }
        });
    }
    full_mesh(&h, &[1, 2, 3, 4, 5, 6]);

    // Remove machine 5 (from machine 1): it keeps running its flattened config.
    ok(&h.strata(1, &["cluster", "remove", "lab5.example.com"]));
    wait_until(SETTLE, "lab5 leaves", || {
        let list = ok(&h.strata(5, &["cluster", "list"]));
        if list.contains("standalone") {
            Ok(())
        } else {
            Err(list)
        }
    });
    // Rome's dns, inherited while it was a member, is its own standalone setting now.
    let dns = std::fs::read_to_string(h.machine(5).dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("192.0.2.53"), "{dns}");
    let log = ok(&h.strata(5, &["log"]));
    assert!(log.contains("left the cluster"), "{log}");
    // The others forget it and refuse its key: a peer login with it is refused, and said.
    let key = russh::keys::load_secret_key(h.machine(5).dir.join("host_key"), None).unwrap();
    let member = h.machine(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut options = strata::protocol::ClientOptions::new(
        member.ip.to_string(),
        member.relay.port(),
        strata::protocol::HostKeyPin::Fingerprint(member.fingerprint()),
        "strata-peer",
        strata::protocol::Login::Key(Box::new(key)),
    );
    options.bind = Some(h.machine(5).ip.into());
    let refused = rt.block_on(strata::protocol::Client::connect(options));
    assert!(
        matches!(refused, Err(strata::protocol::PeerError::Login { .. })),
        "{:?}",
        refused.err()
    );
    assert!(
        member.log().contains("not the host key of a member"),
        "{}",
        member.log()
    );
    let listing = ok(&h.strata(2, &["cluster", "list"]));
    assert!(!listing.contains("lab5"), "{listing}");
}

#[test]
fn joins_that_must_fail_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 3);
    let pass = create(&h, tmp.path());
    let member = h.machine(1);
    let addr = member.relay.to_string();

    // A wrong fingerprint: the joiner never logs in.
    let wrong_fp = h.machine(2).fingerprint();
    let out = h.strata(
        2,
        &[
            "cluster",
            "join",
            &addr,
            "--fingerprint",
            &wrong_fp,
            "--passphrase-file",
            &pass,
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("check the fingerprint"),
        "{}",
        stderr(&out)
    );
    assert!(
        h.machine(2).log().contains("join failed"),
        "{}",
        h.machine(2).log()
    );

    // A wrong passphrase.
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, "not it\n").unwrap();
    let out = join(&h, 2, 1, &bad.display().to_string(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        h.machine(1).log().contains("login refused"),
        "{}",
        h.machine(1).log()
    );

    // A pre-shared join with a key nobody registered.
    let out = join(&h, 3, 1, &pass, &["--pre-shared"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        h.machine(1)
            .log()
            .contains("not the host key of a machine registered with `prepjoin add`"),
        "{}",
        h.machine(1).log()
    );

    // Without --yes and without a terminal: refused before anything is asked of the member.
    let out = h.strata(
        2,
        &[
            "cluster",
            "join",
            &addr,
            "--fingerprint",
            &member.fingerprint(),
            "--passphrase-file",
            &pass,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));

    // The good join, then a second one of the same machine is refused: it is in a cluster.
    ok(&join(&h, 2, 1, &pass, &[]));
    let out = join(&h, 2, 1, &pass, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already in cluster americas"),
        "{}",
        stderr(&out)
    );

    // Removing a machine that is no member says so.
    let out = h.strata(1, &["cluster", "remove", "lab9.example.com"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a member"), "{}", stderr(&out));
}
