//! Who owns what, end to end with real agents: a repo applied over a cluster keeps the
//! admin passphrase set with `cluster passwd` (a later passphrase join works), `cluster
//! list` calls the machines the repo declares managed or expected — never unmanaged, as
//! `check --repo` agrees — each member is listed with one address form, and a repo
//! that sets its own hash says so in the plan.

use crate::agent_support::{ok, stdout, strata};
use crate::cluster_support::{SETTLE, apply, check, dns, json, write_repo};
use crate::mesh_support::{MeshHarness, PASSPHRASE, wait_until};

/// The machines of `cluster list --format json` on machine `i`: name → the listing.
fn listed(h: &MeshHarness, i: usize) -> Vec<serde_json::Value> {
    let list = json(&h.strata(i, &["cluster", "list", "--format", "json"]));
    list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["machines"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn a_repo_without_hashes_keeps_the_admin_passphrase_and_declares_its_machines() {
    let tmp = tempfile::tempdir().unwrap();
    let h = MeshHarness::start(tmp.path(), 3);
    // Machine 1 creates the cluster and sets the admin passphrase; machine 2 joins.
    ok(&h.strata(1, &["cluster", "create", "americas"]));
    let pass = tmp.path().join("passphrase");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let pass_arg = pass.display().to_string();
    ok(&h.strata(1, &["cluster", "passwd", "--passphrase-file", &pass_arg]));
    h.join(2, &pass);

    // The repo declares all three machines and no users at all.
    let repo = tmp.path().join("repo");
    write_repo(&repo, 3, &dns("10.0.0.53"));
    let planned = h.strata(1, &["plan", "--repo", &repo.display().to_string()]);
    let plan = stdout(&planned);
    assert_eq!(planned.status.code(), Some(2), "{plan}");
    assert!(
        !plan.contains("cluster/users"),
        "the users section and its admin hash are left alone:\n{plan}"
    );
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));

    // The passphrase still admits a joiner.
    h.join(3, &pass);

    // Every member is managed (declared and joined): none is called unmanaged, and each
    // is listed as IP:PORT, the address the mesh dials.
    let machines = wait_until(SETTLE, "every member is listed as connected", || {
        let m = listed(&h, 1);
        let reach: Vec<&str> = m.iter().map(|m| m["reach"].as_str().unwrap()).collect();
        if reach.iter().filter(|r| **r == "connected").count() == 2 {
            Ok(m)
        } else {
            Err(format!("{m:?}"))
        }
    });
    assert_eq!(machines.len(), 3, "{machines:?}");
    for (i, m) in machines.iter().enumerate() {
        assert_eq!(m["unmanaged"], false, "{m}");
        let relay = h.machine(i + 1).relay.to_string();
        assert_eq!(m["address"], relay.as_str(), "one address form: {m}");
    }
    let human = ok(&h.strata(1, &["cluster", "list"]));
    assert!(!human.contains("unmanaged"), "{human}");
    let (code, text) = check(&h, 1, &["--repo", &repo.display().to_string()]);
    assert_eq!(code, Some(0), "check --repo agrees: {text}");

    // A repo that sets its own hash for admin wins, and the plan says it replaces one.
    let hash = ok(&strata(&[
        "hash-passphrase",
        "--passphrase-file",
        &pass_arg,
    ]));
    write_repo(
        &repo,
        3,
        &format!(
            "{}\n    users {{ user \"admin\" role=\"administrator\" passphrase-hash=\"{}\"; }}",
            dns("10.0.0.53"),
            hash.trim()
        ),
    );
    let plan = stdout(&h.strata(1, &["plan", "--repo", &repo.display().to_string()]));
    assert!(
        plan.contains(
            "the repo sets the passphrase hash of admin, replacing the one set on the cluster"
        ),
        "{plan}"
    );
}
