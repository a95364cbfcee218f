//! Renaming a member — the seed's FAQ on changing a clustered appliance's hostname, done
//! without leaving the cluster: `strata cluster renamemachine OLD NEW`, with the machine
//! up and with it away. It keeps its identity (host key), its machine-level settings and
//! its history; its agent restarts under the new name; the old name is gone.

use std::path::Path;

use crate::agent_support::{ok, stderr};
use crate::cluster_support::{apply, clean, json, list_machines, logged_ids, running};
use crate::json_schemas::matching_schema;
use crate::mesh_support::{MeshHarness, wait_until};

const SETTLE: std::time::Duration = std::time::Duration::from_secs(30);

/// A repo of machines lab1..=lab3 in which lab2 has a dns of its own, and its hostname.
fn repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("cluster.kdl"),
        "cluster \"americas\" {\n    cluster-mesh ping-interval-ms=100\n    dns { server \"10.0.0.53\"; }\n}\n\
         group \"Main_Group\"\nmachine \"lab1.example.com\"\n\
         machine \"lab2.example.com\" {\n    dns { server \"10.2.2.2\"; }\n    hostname \"lab2.example.com\"\n}\n\
         machine \"lab3.example.com\"\n",
    )
    .unwrap();
}

/// The machine names `cluster list` on machine `i` shows.
fn listed(h: &MeshHarness, i: usize) -> Vec<String> {
    let v = json(&h.strata(i, &["cluster", "list", "--format", "json"]));
    let mut names: Vec<String> = list_machines(&v)
        .into_iter()
        .filter_map(|(_, m)| m["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[test]
fn a_renamed_member_keeps_its_key_settings_and_history_and_its_agent_takes_the_name() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let dir = tmp.path().join("repo");
    repo(&dir);
    ok(&apply(&h, 1, &dir, &["--wait", "30"]));
    assert!(running(&h, 2, "dns").contains("10.2.2.2"));
    let before = logged_ids(&h, 2);
    let key = h.machine(2).host_public_key();

    // Renamed from another member, while it runs.
    let out = h.strata(
        1,
        &[
            "cluster",
            "renamemachine",
            "lab2.example.com",
            "lab7.example.com",
            "--format",
            "json",
        ],
    );
    let doc = matching_schema("cluster-renamemachine", &out);
    assert_eq!(doc["to"], "lab7.example.com");
    assert!(doc["change_set"].is_object(), "{doc}");
    h.renamed(2, "lab7.example.com");
    let settings = std::fs::read_to_string(h.machine(2).dir.join("agent.kdl")).unwrap();
    assert!(
        settings.contains("machine \"lab7.example.com\""),
        "{settings}"
    );
    let status = json(&h.strata(2, &["status", "--format", "json"]));
    assert_eq!(status["machine"], "lab7.example.com", "{status}");
    // The same key, the same machine-level settings, the history kept.
    assert_eq!(h.machine(2).host_public_key(), key);
    assert!(running(&h, 2, "dns").contains("10.2.2.2"));
    // Its hostname named it by the old name: now by the new one.
    assert!(
        running(&h, 2, "hostname").contains("lab7.example.com"),
        "{}",
        running(&h, 2, "hostname")
    );
    let after = logged_ids(&h, 2);
    assert!(
        before.iter().all(|id| after.contains(id)),
        "{before:?} {after:?}"
    );
    for i in 1..=3 {
        wait_until(SETTLE, &format!("lab{i} lists lab7, not lab2"), || {
            let names = listed(&h, i);
            if names == ["lab1.example.com", "lab3.example.com", "lab7.example.com"] {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        });
    }
    clean(&h, 1);
    // A member under its new name: what it commits reaches the others.
    ok(&h.strata(2, &["cluster", "addgroup", "Paris"]));
    wait_until(SETTLE, "lab1 has lab7's group", || {
        let v = json(&h.strata(1, &["cluster", "list", "--format", "json"]));
        if v.to_string().contains("\"Paris\"") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
    // The old name is no member any more; the new one is taken.
    let out = h.strata(
        1,
        &[
            "cluster",
            "renamemachine",
            "lab2.example.com",
            "lab9.example.com",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a member"), "{}", stderr(&out));
    let out = h.strata(
        1,
        &[
            "cluster",
            "renamemachine",
            "lab3.example.com",
            "lab7.example.com",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("a member of the cluster already"));

    // Renamed while its agent is stopped: it starts under its old name, links, learns
    // the rename from a peer instead of taking it for its removal, and takes the name.
    assert!(h.terminate(3).success());
    ok(&h.strata(
        1,
        &[
            "cluster",
            "renamemachine",
            "lab3.example.com",
            "lab8.example.com",
        ],
    ));
    h.restart(3);
    h.renamed(3, "lab8.example.com");
    let status = json(&h.strata(3, &["status", "--format", "json"]));
    assert_eq!(status["machine"], "lab8.example.com", "{status}");
    assert!(
        !h.machine(3).log().contains("removed from the cluster"),
        "{}",
        h.machine(3).log()
    );
    wait_until(SETTLE, "lab8 lists the cluster as it is", || {
        let names = listed(&h, 3);
        if names == ["lab1.example.com", "lab7.example.com", "lab8.example.com"] {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    });
    clean(&h, 3);
}

#[test]
fn a_repo_renames_a_member_with_was_and_the_apply_through_it_needs_no_removal_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let dir = tmp.path().join("repo");
    repo(&dir);
    ok(&apply(&h, 1, &dir, &["--wait", "30"]));
    let key = h.machine(2).host_public_key();
    let text = std::fs::read_to_string(dir.join("cluster.kdl"))
        .unwrap()
        .replace(
            "machine \"lab2.example.com\" {",
            "machine \"lab6.example.com\" was=\"lab2.example.com\" {",
        )
        .replace(
            "hostname \"lab2.example.com\"",
            "hostname \"lab6.example.com\"",
        );
    std::fs::write(dir.join("cluster.kdl"), text).unwrap();
    let repo_arg = dir.display().to_string();

    // The plan says it is a rename: no member removed, the facts kept.
    let out = h.strata(1, &["plan", "--repo", &repo_arg, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let plan = json(&out);
    assert_eq!(plan["hazards"], serde_json::json!([]), "{plan}");
    assert!(
        plan.to_string().contains("renamed from lab2.example.com"),
        "{plan}"
    );

    let shown = h.strata(1, &["plan", "--repo", &repo_arg]);
    let temp = crate::support::regex_escape(&tmp.path().display().to_string());
    insta::with_settings!({ filters => vec![
        (temp.as_str(), "[TEMP]"),
        (r#"host-key="[^"]+""#, "host-key=[KEY]"),
        (r#"peer="[^"]+""#, "peer=[PEER]"),
        (r#"serial="?\w+"?"#, "serial=[SERIAL]"),
        (r#"strata-version="[^"]+""#, "strata-version=[VERSION]"),
    ] }, {
        insta::assert_snapshot!("rename_plan", crate::agent_support::stdout(&shown));
    });

    // Applied through the renamed machine itself, without --allow-member-removal.
    ok(&apply(&h, 2, &dir, &[]));
    h.renamed(2, "lab6.example.com");
    assert_eq!(h.machine(2).host_public_key(), key);
    assert!(running(&h, 2, "dns").contains("10.2.2.2"));
    assert!(running(&h, 2, "hostname").contains("lab6.example.com"));
    wait_until(SETTLE, "every member lists lab6", || {
        let names: Vec<Vec<String>> = (1..=3).map(|i| listed(&h, i)).collect();
        let want = ["lab1.example.com", "lab3.example.com", "lab6.example.com"];
        if names.iter().all(|n| n == &want) {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    });
    clean(&h, 1);
    // The cluster is what the repo says: no drift, nothing left to apply.
    let out = h.strata(1, &["check", "--repo", &repo_arg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        crate::agent_support::stdout(&out),
        stderr(&out)
    );
    let out = h.strata(3, &["plan", "--repo", &repo_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_rename_must_leave_the_old_name_behind() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("cluster.kdl"),
        "cluster \"americas\"\ngroup \"Main_Group\"\nmachine \"lab1\"\nmachine \"lab6\" was=\"lab1\"\nmachine \"lab7\" was=\"lab7\"\n",
    )
    .unwrap();
    let out = crate::support::strata(tmp.path(), &["validate", "."]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains("machine `lab6` was `lab1`, which the repo still declares"),
        "{text}"
    );
    assert!(text.contains("machine `lab7` says it was itself"), "{text}");
}
