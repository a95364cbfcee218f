//! Loading a cluster configuration file onto other appliances (the seed's "Load Cluster
//! Configuration", issue 24 item 7): a cluster saved as XML from machines `old1`/`old2`
//! is imported with `--assign`, each appliance of a running three-agent cluster given a
//! group and an appliance configuration to copy, or "Don't Copy"; applied, each machine
//! runs what it was assigned and nothing of the others'.

use std::path::Path;

use crate::agent_support::{ok, strata};
use crate::cluster_support::{SETTLE, running};
use crate::mesh_support::{MeshHarness, wait_until};

/// The saved cluster: group Paris sets its own dns; old1 (Main_Group) its own ntp, old2
/// (Paris) its own timezone.
fn saved_cluster(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("saved");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("cluster.kdl"),
        r#"cluster "americas" {
    cluster-mesh ping-interval-ms=100
    dns { server "10.0.0.53" priority=0; }
}
group "Main_Group"
group "Paris" { dns { server "192.0.2.53" priority=0; }; }
machine "old1.example.com" { ntp { server "ntp.old1.example.com"; }; }
machine "old2.example.com" group="Paris" { timezone "Europe/Paris"; }
"#,
    )
    .unwrap();
    let xml = dir.join("saved.xml");
    ok(&strata(&[
        "export-xml",
        "--cluster",
        "--repo",
        repo.to_str().unwrap(),
        "--out",
        xml.to_str().unwrap(),
    ]));
    xml
}

#[test]
fn a_cluster_file_loads_onto_other_appliances_as_assigned() {
    let tmp = tempfile::tempdir().unwrap();
    let xml = saved_cluster(tmp.path());
    let h = MeshHarness::start(tmp.path(), 3);
    h.form(tmp.path(), "americas");
    let repo = tmp.path().join("loaded");
    let out = ok(&strata(&[
        "import-xml",
        xml.to_str().unwrap(),
        "--repo",
        repo.to_str().unwrap(),
        "--assign",
        "lab1.example.com=old1.example.com",
        "--assign",
        "lab2.example.com=group:Paris",
        "--assign",
        "lab3.example.com=old2.example.com",
    ]));
    assert!(out.contains("onto 3 appliances"), "{out}");
    assert!(
        out.contains(
            "copied: lab1.example.com from old1.example.com, lab3.example.com from old2.example.com"
        ),
        "{out}"
    );
    assert!(
        out.contains("not copied: lab2.example.com (group Paris)"),
        "{out}"
    );
    // The file's own machines are not declared.
    assert!(!repo.join("machines/old1.example.com.kdl").exists());
    let repo_arg = repo.display().to_string();
    ok(&h.strata(1, &["apply", "--repo", &repo_arg, "--yes", "--wait", "30"]));
    wait_until(SETTLE, "every machine runs what it was assigned", || {
        let seen = (
            running(&h, 1, "ntp"),
            running(&h, 2, "dns"),
            running(&h, 3, "timezone"),
        );
        if seen.0.contains("ntp.old1.example.com")
            && seen.1.contains("192.0.2.53")
            && seen.2.contains("Europe/Paris")
        {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    });
    // lab1 copied old1: Main_Group's (the cluster's) dns, old1's ntp.
    assert!(running(&h, 1, "dns").contains("10.0.0.53"));
    assert!(!running(&h, 1, "timezone").contains("Europe/Paris"));
    // lab2: Paris's dns, and none of old2's machine settings ("Don't Copy").
    assert!(!running(&h, 2, "timezone").contains("Europe/Paris"));
    assert!(!running(&h, 2, "ntp").contains("ntp.old1"));
    // lab3 copied old2: Paris's dns and old2's timezone.
    assert!(running(&h, 3, "dns").contains("192.0.2.53"));
    assert!(!running(&h, 3, "ntp").contains("ntp.old1"));
}

#[test]
fn assignments_the_file_cannot_satisfy_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let xml = saved_cluster(tmp.path());
    let repo = tmp.path().join("loaded");
    let out = strata(&[
        "import-xml",
        xml.to_str().unwrap(),
        "--repo",
        repo.to_str().unwrap(),
        "--assign",
        "lab1.example.com=old9.example.com",
        "--assign",
        "lab2.example.com=group:Rome",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        err.contains(
            "the file has no machine old9.example.com (it has old1.example.com, old2.example.com)"
        ),
        "{err}"
    );
    assert!(
        err.contains("the file has no group Rome (it has Main_Group, Paris)"),
        "{err}"
    );
    assert!(!repo.exists());
}
