//! Secrets in the repo, with real agents: an LDAP bind password encrypted offline to the
//! cluster's recipient validates, plans and applies; every member's running config holds
//! the clear value (0600); no output of plan, show, log, check, status or validate, text
//! or JSON, contains it. A clear secret is refused by `validate` and by a push. Rotation:
//! the old identity decrypts until retired; a retire is refused while the repo holds
//! secrets only the old one decrypts; `reencrypt` rewrites them in place, keeping
//! comments; after the retire, a value encrypted to the retired key is refused, naming
//! its line.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::agent_support::{
    apply_main, created, git_repo, keypair, ok, p, plan_main, sd, stderr, stdout, strata,
};
use crate::cluster_support::{apply, cluster, json, running, write_repo};
use crate::mesh_support::wait_until;
use crate::pusher::Pusher;

const CLEAR: &str = "Tr0ub4dor&3-clear";

/// `strata ARGS` with `input` on standard input.
fn strata_in(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "400")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `value` encrypted offline to `recipients`, as a KDL multi-line string.
fn encrypted(value: &str, recipients: &[&str]) -> String {
    let mut args = vec!["secret", "encrypt", "--kdl"];
    for r in recipients {
        args.extend(["--recipient", r]);
    }
    let out = strata_in(&args, &format!("{value}\n"));
    let text = ok(&out);
    assert!(
        text.contains("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{text}"
    );
    assert!(!text.contains(value));
    text.trim_end().to_owned()
}

/// An `ldap-servers` section whose bind password is `password` (KDL value text).
fn ldap(password: &str) -> String {
    format!(
        "ldap-servers {{\n        // the directory's service account\n        profile \"corp\" base=\"dc=example,dc=com\" bind-dn=\"cn=strata\" bind-password={password} {{\n            hosts \"ldap1.example.com\"\n        }}\n    }}"
    )
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

#[test]
fn an_encrypted_bind_password_reaches_every_running_config_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let h = cluster(tmp.path(), 2);
    // Every member holds the cluster's identity: both print the same recipient.
    let recipient = |i: usize| {
        let v = json(&h.strata(i, &["secret", "recipient", "--format", "json"]));
        v["recipients"][0]["recipient"].as_str().unwrap().to_owned()
    };
    let r1 = recipient(1);
    assert!(r1.starts_with("age1"), "{r1}");
    wait_until(
        crate::cluster_support::SETTLE,
        "lab2 holds the identity",
        || {
            let r2 = recipient(2);
            if r2 == r1 { Ok(()) } else { Err(r2) }
        },
    );

    // Encrypted offline (as CI would), to the cluster and a break-glass key.
    let glass = age::x25519::Identity::generate();
    let glass_r = glass.to_public().to_string();
    let repo = tmp.path().join("repo");
    write_repo(&repo, 2, &ldap(&encrypted(CLEAR, &[&r1, &glass_r])));
    ok(&strata(&["validate", &p(&repo)]));
    ok(&apply(&h, 1, &repo, &["--wait", "30"]));
    for i in [1, 2] {
        wait_until(
            crate::cluster_support::SETTLE,
            &format!("lab{i} runs the clear value"),
            || {
                let text = running(&h, i, "ldap-servers");
                if text.contains(CLEAR) {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        );
        let path = h.machine(i).dir.join("running/ldap-servers.kdl");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    // The break-glass key decrypts what git holds, offline.
    let kdl = std::fs::read_to_string(repo.join("cluster.kdl")).unwrap();
    let doc: kdl::KdlDocument = kdl.parse().unwrap();
    let stored = doc.nodes()[0].children().unwrap().nodes()[1]
        .children()
        .unwrap()
        .nodes()[0]
        .get("bind-password")
        .unwrap()
        .as_string()
        .unwrap()
        .to_owned();
    assert_eq!(strata::secret::decrypt(&stored, &[glass]).unwrap(), CLEAR);

    // A changed secret shows as a change, masked; then every output, text and JSON.
    write_repo(&repo, 2, &ldap(&encrypted("another-clear", &[&r1])));
    let rp = p(&repo);
    let plan = h.strata(1, &["plan", "--repo", &rp]);
    assert_eq!(plan.status.code(), Some(2), "{}", both(&plan));
    assert!(
        stdout(&plan).contains("<secret sha256:"),
        "{}",
        stdout(&plan)
    );
    assert!(!stdout(&plan).contains("BEGIN AGE"), "{}", stdout(&plan));
    let name = h.machine(1).name.clone();
    let runs: Vec<(String, Output)> = [
        vec!["plan", "--repo", &rp],
        vec!["plan", "--repo", &rp, "--format", "json"],
        vec!["log"],
        vec!["log", "--format", "json"],
        vec!["log", "--conflicts", "--format", "json"],
        vec!["check"],
        vec!["check", "--format", "json"],
        vec!["check", "--repo", &rp, "--format", "json"],
        vec!["status"],
        vec!["status", "--format", "json"],
        vec!["cluster", "list", "--format", "json"],
        vec!["secret", "recipient"],
    ]
    .into_iter()
    .map(|args| (args.join(" "), h.strata(1, &args)))
    .chain(
        [
            vec!["show", "--repo", &rp, "--machine", &name],
            vec![
                "show",
                "--repo",
                &rp,
                "--machine",
                &name,
                "--format",
                "json",
            ],
            vec!["show", "--repo", &rp, "--cluster", "ldap-servers"],
            vec!["validate", &rp, "--format", "json"],
            vec!["where", "ldap-servers", "--repo", &rp],
        ]
        .into_iter()
        .map(|args| (args.join(" "), strata(&args))),
    )
    .collect();
    for (what, out) in &runs {
        let text = both(out);
        assert!(!text.contains(CLEAR), "`{what}` shows the secret:\n{text}");
        assert!(!text.contains("another-clear"), "`{what}`:\n{text}");
        assert!(
            !text.contains("BEGIN AGE"),
            "`{what}` shows ciphertext:\n{text}"
        );
    }
    let shown = stdout(&runs.iter().find(|(w, _)| w.starts_with("show")).unwrap().1);
    assert!(shown.contains("bind-password=\"<secret sha256:"), "{shown}");
    // The agents' own logs do not hold it either.
    for i in [1, 2] {
        assert!(!h.machine(i).log().contains(CLEAR));
    }
}

#[test]
fn clear_secrets_are_refused_by_validate_and_by_a_push() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("v");
    write_repo(&repo, 1, &ldap("\"hunter2-clear\""));
    let out = strata(&["validate", &p(&repo)]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let text = both(&out);
    assert!(text.contains("strata::secret::plaintext"), "{text}");
    assert!(text.contains("strata secret encrypt"), "{text}");
    assert!(
        !text.contains("hunter2-clear"),
        "the diagnostic stars it:\n{text}"
    );
    let allowed = strata(&["validate", &p(&repo), "--allow-plaintext-secrets"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", both(&allowed));
    assert!(both(&allowed).contains("warning"), "{}", both(&allowed));

    // A push of the same is refused: nothing changes.
    let agent = created(&tmp.path().join("agent"));
    let key = tmp.path().join("ada");
    let ada_pub = keypair(&key);
    let users = format!(
        "users {{\n        user \"admin\" role=\"administrator\"\n        user \"ada\" role=\"operator\" {{ key \"{ada_pub}\"; }}\n    }}"
    );
    let git = tmp.path().join("repo");
    let kdl = |extra: &str| {
        format!(
            "cluster \"americas\" {{\n    {users}\n    {extra}\n}}\ngroup \"Main_Group\"\nmachine \"lab1.example.com\"\n"
        )
    };
    git_repo(&git, &[("cluster.kdl", &kdl(""))], "users");
    apply_main(&p(&git), &sd(&agent));
    git_repo(
        &git,
        &[("cluster.kdl", &kdl(&ldap("\"hunter2-clear\"")))],
        "ldap: clear password",
    );
    let ada = Pusher::new(&agent, tmp.path(), "ada", &key);
    let pushed = ada.push(&git);
    let text = both(&pushed);
    assert!(!pushed.status.success(), "{text}");
    assert!(text.contains("strata::secret::plaintext"), "{text}");
    assert!(!text.contains("hunter2-clear"), "{text}");
    assert!(
        !agent.dir.join("running/ldap-servers.kdl").exists()
            || !std::fs::read_to_string(agent.dir.join("running/ldap-servers.kdl"))
                .unwrap()
                .contains("hunter2-clear")
    );

    // Migrating, a plan lets it through with a warning, and shows it masked.
    for format in ["human", "json"] {
        let out = strata(&[
            "plan",
            "--repo",
            &p(&git),
            "--state-dir",
            &sd(&agent),
            "--allow-plaintext-secrets",
            "--format",
            format,
        ]);
        let text = both(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains("<secret sha256:"), "{text}");
        assert!(!text.contains("hunter2-clear"), "{text}");
    }

    // Encrypted, the same push goes through; what it prints shows the secret masked.
    let value = ok(&strata_in(
        &["secret", "encrypt", "--kdl", "--state-dir", &sd(&agent)],
        "hunter2-clear",
    ));
    git_repo(
        &git,
        &[("cluster.kdl", &kdl(&ldap(value.trim_end())))],
        "ldap: encrypted password",
    );
    let pushed = ada.push(&git);
    let text = both(&pushed);
    assert!(pushed.status.success(), "{text}\n{}", agent.log());
    assert!(text.contains("<secret sha256:"), "{text}");
    assert!(
        !text.contains("BEGIN AGE") && !text.contains("hunter2-clear"),
        "{text}"
    );
    let running = std::fs::read_to_string(agent.dir.join("running/ldap-servers.kdl")).unwrap();
    assert!(running.contains("hunter2-clear"), "{running}");
}

/// The value of the first `bind-password=` in `file`, as stored.
fn stored_secret(file: &Path) -> String {
    let kdl = std::fs::read_to_string(file).unwrap();
    let start = kdl.find("bind-password=").unwrap();
    let begin = kdl[start..].find("-----BEGIN").unwrap() + start;
    let end = kdl[begin..]
        .find("-----END AGE ENCRYPTED FILE-----")
        .unwrap()
        + begin;
    kdl[begin..end + "-----END AGE ENCRYPTED FILE-----".len()].to_owned()
}

#[test]
fn rotation_keeps_the_old_identity_until_it_is_retired() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = created(&tmp.path().join("agent"));
    let sd = sd(&agent);
    let old = json(&strata(&[
        "secret",
        "recipient",
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]))["recipients"][0]["recipient"]
        .as_str()
        .unwrap()
        .to_owned();
    let git = tmp.path().join("repo");
    let kdl = |password: &str| {
        format!(
            "cluster \"americas\" {{\n    {}\n}}\ngroup \"Main_Group\"\nmachine \"lab1.example.com\"\n",
            ldap(password)
        )
    };
    // Encrypted to the cluster through the agent (no --recipient).
    let value = ok(&strata_in(
        &["secret", "encrypt", "--kdl", "--state-dir", &sd],
        CLEAR,
    ));
    git_repo(&git, &[("cluster.kdl", &kdl(value.trim_end()))], "ldap");
    apply_main(&p(&git), &sd);
    let running = agent.dir.join("running/ldap-servers.kdl");
    assert!(std::fs::read_to_string(&running).unwrap().contains(CLEAR));
    let to_old = stored_secret(&git.join("cluster.kdl"));

    // Rotate: a new current recipient; the repo's secret is listed with its line.
    let rotated = ok(&strata(&[
        "secret",
        "rotate",
        "--state-dir",
        &sd,
        "--repo",
        &p(&git),
    ]));
    assert!(rotated.contains("cluster.kdl:4"), "{rotated}");
    assert!(
        rotated.contains("ldap-servers › profile \"corp\" bind-password"),
        "{rotated}"
    );
    let list = json(&strata(&[
        "secret",
        "recipient",
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]));
    assert_eq!(list["recipients"][1]["recipient"], old.as_str(), "{list}");
    assert_ne!(list["recipients"][0]["recipient"], old.as_str());
    // The old identity still decrypts: a plan of the repo as it is passes.
    assert_eq!(plan_main(&p(&git), &sd).status.code(), Some(0));

    // Retiring now is refused, naming the line.
    let refused = strata(&["secret", "retire", "--state-dir", &sd, "--repo", &p(&git)]);
    assert_eq!(refused.status.code(), Some(1), "{}", both(&refused));
    assert!(
        both(&refused).contains("cluster.kdl:4"),
        "{}",
        both(&refused)
    );
    // Without --repo, the agent refuses on what it runs.
    let refused = strata(&["secret", "retire", "--state-dir", &sd]);
    assert_eq!(refused.status.code(), Some(1), "{}", both(&refused));
    assert!(
        both(&refused).contains("bind-password"),
        "{}",
        both(&refused)
    );

    // Re-encrypt in place: the comment and the rest of the file stay.
    let before = std::fs::read_to_string(git.join("cluster.kdl")).unwrap();
    let out = ok(&strata(&[
        "secret",
        "reencrypt",
        "--state-dir",
        &sd,
        "--repo",
        &p(&git),
    ]));
    assert!(out.contains("re-encrypted 1 secret in 1 file"), "{out}");
    let after = std::fs::read_to_string(git.join("cluster.kdl")).unwrap();
    assert_ne!(before, after);
    let cut = |t: &str| t[..t.find("bind-password=").unwrap()].to_owned();
    assert_eq!(
        cut(&before),
        cut(&after),
        "the file before the value is kept"
    );
    assert!(after.contains("// the directory's service account"));
    assert!(after.ends_with("machine \"lab1.example.com\"\n"), "{after}");
    git_repo(&git, &[], "secrets: re-encrypted");
    apply_main(&p(&git), &sd);
    assert!(std::fs::read_to_string(&running).unwrap().contains(CLEAR));
    ok(&strata(&[
        "secret",
        "retire",
        "--state-dir",
        &sd,
        "--repo",
        &p(&git),
    ]));
    let list = json(&strata(&[
        "secret",
        "recipient",
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]));
    assert_eq!(list["recipients"].as_array().unwrap().len(), 1, "{list}");

    // A value encrypted to the retired identity: the plan is refused, naming the line.
    let back = kdl(&strata::secret::kdl_multiline(&to_old, "        "));
    git_repo(&git, &[("cluster.kdl", &back)], "an old ciphertext");
    let out = plan_main(&p(&git), &sd);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    crate::temp_snapshot!("retired_identity", &stderr(&out), tmp.path());

    // A saved plan is not asked again: one whose secret the cluster cannot decrypt
    // applies, leaves it encrypted in the running config, and the apply says so.
    let value = ok(&strata_in(
        &["secret", "encrypt", "--kdl", "--state-dir", &sd],
        "another-clear",
    ));
    git_repo(
        &git,
        &[("cluster.kdl", &kdl(value.trim_end()))],
        "new value",
    );
    let saved = tmp.path().join("plan.json");
    let out = strata(&[
        "plan",
        "--repo",
        &p(&git),
        "--state-dir",
        &sd,
        "--out",
        &p(&saved),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let foreign = age::x25519::Identity::generate().to_public();
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    fn swap(v: &mut serde_json::Value, to: &str) {
        match v {
            serde_json::Value::String(s) if strata::secret::is_encrypted(s) => *s = to.to_owned(),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| swap(v, to)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|v| swap(v, to)),
            _ => {}
        }
    }
    swap(
        &mut plan,
        &strata::secret::encrypt("foreign-clear", &[foreign]).unwrap(),
    );
    std::fs::write(&saved, plan.to_string()).unwrap();
    let out = strata(&["apply", "--plan", &p(&saved), "--state-dir", &sd, "--yes"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("decrypt secrets"), "{text}");
    assert!(text.contains("bind-password"), "{text}");
    assert!(!text.contains("foreign-clear"), "{text}");
    let ran = std::fs::read_to_string(&running).unwrap();
    assert!(
        ran.contains("BEGIN AGE") && !ran.contains("foreign-clear"),
        "{ran}"
    );

    // The same commands with --format json print what their schemas describe.
    use crate::json_schemas::matching_schema;
    let doc = matching_schema(
        "secret-encrypt",
        &strata_in(
            &["secret", "encrypt", "--state-dir", &sd, "--format", "json"],
            "json-clear",
        ),
    );
    assert_eq!(doc["recipients"], 1);
    let doc = matching_schema(
        "secret-rotate",
        &strata(&[
            "secret",
            "rotate",
            "--state-dir",
            &sd,
            "--repo",
            &p(&git),
            "--format",
            "json",
        ]),
    );
    assert_eq!(doc["reencrypt"][0]["line"], 4, "{doc}");
    assert_eq!(doc["recipients"].as_array().map(Vec::len), Some(2));
    let doc = matching_schema(
        "secret-reencrypt",
        &strata(&[
            "secret",
            "reencrypt",
            "--state-dir",
            &sd,
            "--repo",
            &p(&git),
            "--format",
            "json",
        ]),
    );
    assert_eq!(doc["files"], serde_json::json!(["cluster.kdl"]), "{doc}");
}
