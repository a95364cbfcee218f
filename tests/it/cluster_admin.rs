//! End to end: administering a cluster through a real agent — the admin passphrase and
//! a login with it, renaming the cluster, groups and their machines and sections, the
//! machines registered to join, `hash-passphrase`, and who may do what.

use std::path::Path;

use crate::agent_support::{
    CLUSTER, MACHINES, apply_main, change_set_ids, created, git_repo, keypair, log_with_passphrase,
    p, sd, stderr, stdout, strata,
};
use crate::support::transcript;

/// A host key for a machine registered to join (fixed, so snapshots are stable).
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdZ7qJ8HiMf5Fxe6ThYtAczQh0wkZ7iMdQ1j6IcFuQ9 root@lab6";

/// The JSON of a run that must have succeeded.
fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The last change set of the agent, as `strata log --format json` gives it.
fn last_change_set(sd: &str) -> serde_json::Value {
    let log = json_of(&strata(&["log", "--state-dir", sd, "--format", "json"]));
    // The log runs newest first.
    log["change_sets"]
        .as_array()
        .unwrap()
        .first()
        .unwrap()
        .clone()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    p(&path)
}

#[test]
fn passwd_lets_admin_log_in_with_the_passphrase_and_no_other() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    let pass = write(tmp.path(), "pass", "open sesame 42\nignored second line\n");
    let out = strata(&[
        "cluster",
        "passwd",
        "--passphrase-file",
        &pass,
        "--state-dir",
        &sd,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = change_set_ids(&sd);
    assert_eq!(
        stdout(&out),
        format!(
            "cluster admin passphrase set for user admin (administrator) (change set {})\n",
            ids[1]
        )
    );
    assert_eq!(last_change_set(&sd)["meta"]["message"], "cluster passwd");
    // The log runs newest first in JSON as for people, and -n keeps the newest.
    let newest = json_of(&strata(&[
        "log",
        "-n",
        "1",
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]));
    let sets = newest["change_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{newest}");
    assert_eq!(sets[0]["meta"]["message"], "cluster passwd");
    let login = |pass: &str| log_with_passphrase(&agent, "admin", pass).output().unwrap();
    let ok = login("open sesame 42");
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("cluster passwd"), "{}", stdout(&ok));
    let wrong = login("open sesame 43");
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("refused user `admin`"),
        "{}",
        stderr(&wrong)
    );
    // The passphrase is never logged.
    assert!(!agent.log().contains("open sesame"), "{}", agent.log());
    // `--passphrase-file -` reads standard input, as OpenSSH-era tools do.
    let mut piped = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "cluster",
            "passwd",
            "--passphrase-file",
            "-",
            "--state-dir",
            &sd,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    piped
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin 7\n")
        .unwrap();
    let piped = piped.wait_with_output().unwrap();
    assert!(piped.status.success(), "{}", stderr(&piped));
    let from_stdin = login("from stdin 7");
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    // An empty passphrase is refused before anything is sent.
    let empty = write(tmp.path(), "empty", "\n");
    let out = strata(&[
        "cluster",
        "passwd",
        "--passphrase-file",
        &empty,
        "--state-dir",
        &sd,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the passphrase is empty"),
        "{}",
        stderr(&out)
    );
    // Without a file and without a terminal, the command says how to give one.
    let out = strata(&["cluster", "passwd", "--state-dir", &sd]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--passphrase-file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        change_set_ids(&sd).len(),
        3,
        "nothing else was written (create, passwd, passwd from stdin)"
    );
}

#[test]
fn an_operator_may_not_rename_the_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let op = tmp.path().join("op");
    let op_pub = keypair(&op);
    let users = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"admin\" role=\"administrator\"\n        user \"ada\" role=\"operator\" {{ key \"{op_pub}\"; }}\n    }}\n}}\ngroup \"Main_Group\"\n"
    );
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[
            ("cluster.kdl", &users),
            (
                "machines.kdl",
                "machine \"lab1.example.com\" address=\"10.1.0.1\"\n",
            ),
        ],
        "users",
    );
    let agent = created(&tmp.path().join("agent"));
    apply_main(&p(&repo), &sd(&agent));
    let out = strata(&[
        "cluster",
        "setname",
        "emea",
        "--target",
        &agent.addr,
        "--identity",
        &p(&op),
        "--user",
        "ada",
        "--fingerprint",
        &agent.fingerprint(),
    ]);
    insta::assert_snapshot!(transcript(&out));
    assert_eq!(change_set_ids(&sd(&agent)).len(), 2, "nothing was written");
    // The administrator may.
    let out = strata(&["cluster", "setname", "emea", "--state-dir", &sd(&agent)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("cluster renamed to emea (change set "),
        "{}",
        stdout(&out)
    );
    let again = strata(&["cluster", "setname", "emea", "--state-dir", &sd(&agent)]);
    assert_eq!(
        stdout(&again),
        "nothing to change: the cluster is already named emea\n"
    );
}

#[test]
fn groups_are_added_renamed_with_their_machines_and_sections_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    apply_main(&p(&repo), &sd);
    let run = |args: &[&str]| {
        let mut all = vec!["cluster"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--state-dir", &sd]);
        strata(&all)
    };

    let out = run(&["renamegroup", "Paris", "London"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(
            "group Paris renamed to London; machines moved: lab3.example.com; sections moved: dns (change set "
        ),
        "{}",
        stdout(&out)
    );
    let cs = last_change_set(&sd);
    assert_eq!(
        cs["keys"],
        serde_json::json!([
            "@group:London",
            "@group:Paris",
            "@machine:lab3.example.com",
            "group:London/dns",
            "group:Paris/dns"
        ])
    );
    // The repo still says Paris: a plan would take the agent back.
    let plan = strata(&[
        "plan",
        "--ref",
        "main",
        "--repo",
        &p(&repo),
        "--state-dir",
        &sd,
    ]);
    assert_eq!(plan.status.code(), Some(2));
    assert!(
        stdout(&plan).contains("+ group:Paris/dns (created)"),
        "{}",
        stdout(&plan)
    );

    // lab1 moves to London and runs its dns.
    let out = run(&["setgroup", "lab1.example.com", "London"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dns = std::fs::read_to_string(agent.dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("192.0.2.53"), "{dns}");
    let out = run(&["setgroup", "lab9.example.com", "London"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`lab9.example.com` is not a member"),
        "{}",
        stderr(&out)
    );

    let out = run(&["addgroup", "Rome"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["addgroup", "Rome"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("group `Rome` already exists"),
        "{}",
        stderr(&out)
    );
    let out = run(&["addgroup", "not a name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a group name"),
        "{}",
        stderr(&out)
    );

    // A group with machines needs --move-to; the refusal names them.
    let out = run(&["deletegroup", "London"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("group `London` still has machines: lab1.example.com, lab3.example.com")
            && err.contains("--move-to"),
        "{err}"
    );
    let before = change_set_ids(&sd).len();
    let out = run(&[
        "deletegroup",
        "London",
        "--move-to",
        "Rome",
        "--format",
        "json",
    ]);
    let json = json_of(&out);
    assert_eq!(json["group"], "London");
    assert_eq!(json["move_to"], "Rome");
    assert_eq!(
        json["change_set"]["meta"]["message"],
        "cluster deletegroup London (machines moved to Rome: lab1.example.com, lab3.example.com; sections removed: dns)"
    );
    assert_eq!(change_set_ids(&sd).len(), before + 1);
    // lab1 is back on the cluster's dns.
    let dns = std::fs::read_to_string(agent.dir.join("running/dns.kdl")).unwrap();
    assert!(dns.contains("10.0.0.53"), "{dns}");

    // Main_Group goes too; Rome, the last, never does.
    assert!(run(&["deletegroup", "Main_Group"]).status.success());
    let out = run(&["deletegroup", "Rome", "--move-to", "Rome"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["deletegroup", "Rome"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("`Rome` is the cluster's only group, and a cluster needs at least one"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn prepjoin_add_list_delete_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    let list = |format: &str| {
        strata(&[
            "cluster",
            "prepjoin",
            "list",
            "--state-dir",
            &sd,
            "--format",
            format,
        ])
    };
    let empty = list("human");
    assert_eq!(
        stdout(&empty),
        "no machines are registered to join; add one with `strata cluster prepjoin add`\n"
    );
    for (host, serial) in [
        ("lab7.example.com", "S-7"),
        ("lab6.example.com", "4229D8A1F2C4"),
    ] {
        let out = strata(&[
            "cluster",
            "prepjoin",
            "add",
            host,
            "--serial",
            serial,
            "--key",
            KEY,
            "--state-dir",
            &sd,
            "--format",
            "json",
        ]);
        let json = json_of(&out);
        assert_eq!(json["host"], host);
        assert_eq!(
            json["change_set"]["meta"]["message"],
            format!("cluster prepjoin add {host}")
        );
    }
    let json = json_of(&list("json"));
    assert_eq!(
        json["entries"],
        serde_json::json!([
            { "host": "lab6.example.com", "serial": "4229D8A1F2C4", "key": KEY },
            { "host": "lab7.example.com", "serial": "S-7", "key": KEY },
        ])
    );
    insta::assert_snapshot!(transcript(&list("human")));

    // A bad key, or a member, is refused and nothing is written.
    let before = change_set_ids(&sd).len();
    let out = strata(&[
        "cluster",
        "prepjoin",
        "add",
        "lab8.example.com",
        "--serial",
        "S8",
        "--key",
        "ssh-ed25519 nope",
        "--state-dir",
        &sd,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not an OpenSSH public key"),
        "{}",
        stderr(&out)
    );
    assert_eq!(change_set_ids(&sd).len(), before);

    let out = strata(&[
        "cluster",
        "prepjoin",
        "delete",
        "lab7.example.com",
        "--state-dir",
        &sd,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("lab7.example.com is no longer registered to join"));
    let json = json_of(&list("json"));
    assert_eq!(json["entries"].as_array().unwrap().len(), 1);
    let out = strata(&[
        "cluster",
        "prepjoin",
        "delete",
        "lab7.example.com",
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "refused");
    assert_eq!(json["error"], "lab7.example.com is not registered to join");
}

#[test]
fn hash_passphrase_prints_an_argon2id_hash_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let pass = write(tmp.path(), "pass", "correct horse\r\n");
    let out = strata(&["hash-passphrase", "--passphrase-file", &pass]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let hash = text.strip_suffix('\n').unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(strata::cluster::users::verify_passphrase(
        "correct horse",
        hash
    ));
    assert!(!strata::cluster::users::verify_passphrase(
        "correct horse\r",
        hash
    ));
    let json = json_of(&strata(&[
        "hash-passphrase",
        "--passphrase-file",
        &pass,
        "--format",
        "json",
    ]));
    assert!(strata::cluster::users::verify_passphrase(
        "correct horse",
        json["hash"].as_str().unwrap()
    ));
    let empty = write(tmp.path(), "empty", "");
    let out = strata(&["hash-passphrase", "--passphrase-file", &empty]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the passphrase is empty"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unreachable_agent_exits_69() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k");
    keypair(&key);
    let out = strata(&[
        "cluster",
        "addgroup",
        "Rome",
        "--target",
        "127.0.0.1:1",
        "--identity",
        &p(&key),
        "--fingerprint",
        "SHA256:AAAA",
    ]);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
}

#[test]
fn passwd_sets_a_declared_user_s_passphrase_and_a_reapply_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    let repo = tmp.path().join("repo");
    let cluster = CLUSTER.replace("cluster \"americas\" {", "cluster \"americas\" {\n    users { user \"admin\" role=\"administrator\"; user \"ops\" role=\"operator\"; }");
    assert_ne!(cluster, CLUSTER);
    git_repo(
        &repo,
        &[("cluster.kdl", &cluster), ("machines.kdl", MACHINES)],
        "users",
    );
    apply_main(&p(&repo), &sd);
    let pass = write(tmp.path(), "pass", "ops passphrase\n");
    let out = strata(&[
        "cluster",
        "passwd",
        "ops",
        "--passphrase-file",
        &pass,
        "--state-dir",
        &sd,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("passphrase set for user ops"),
        "{}",
        stdout(&out)
    );
    let login = || {
        log_with_passphrase(&agent, "ops", "ops passphrase")
            .output()
            .unwrap()
    };
    let first = login();
    assert!(first.status.success(), "{}", stderr(&first));
    // The repo gives ops no hash: applying it again keeps the one set on the cluster.
    std::fs::write(
        repo.join("cluster.kdl"),
        cluster.replace("10.0.0.53", "10.0.0.54"),
    )
    .unwrap();
    git_repo(&repo, &[], "another resolver");
    apply_main(&p(&repo), &sd);
    let again = login();
    assert!(again.status.success(), "{}", stderr(&again));
    // A user the repo does not declare has no passphrase to set.
    let out = strata(&[
        "cluster",
        "passwd",
        "eve",
        "--passphrase-file",
        &pass,
        "--state-dir",
        &sd,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("user `eve` is not in the cluster's users section"),
        "{}",
        stderr(&out)
    );
}
