//! End to end: real agents on loopback ports, driven through the real CLI.

use std::path::Path;

use crate::agent_support::{TestAgent, git_repo, keypair, stderr, stdout, strata};

const CLUSTER: &str = r#"
cluster "americas" {
    dns { server "10.0.0.53" priority=0; }
    ntp { server "ntp1.example.com"; }
}
group "Main_Group"
group "Paris" { dns { server "192.0.2.53" priority=0; } }
"#;

const MACHINES: &str = r#"
machine "lab1.example.com" address="10.1.0.1" {
    interfaces { interface "Data1" address="10.1.0.1/24" hostname="lab1.example.com"; }
}
machine "lab3.example.com" group="Paris" address="10.1.0.3"
"#;

fn sd(agent: &TestAgent) -> String {
    agent.dir.display().to_string()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A cluster created on a fresh agent.
fn created(dir: &Path) -> TestAgent {
    let agent = TestAgent::start(dir, "lab1.example.com");
    let out = strata(&["cluster", "create", "americas", "--state-dir", &sd(&agent)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("new cluster committed: americas"),
        "{}",
        stdout(&out)
    );
    agent
}

#[test]
fn plan_apply_plan_log_and_rollback_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let commit = git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "americas: first\n\nbody",
    );
    let agent = created(&tmp.path().join("agent"));
    let (sd, repo) = (sd(&agent), p(&repo));

    let plan = strata(&["plan", "--ref", "main", "--repo", &repo, "--state-dir", &sd]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(text.contains("+ cluster/ntp (created)"), "{text}");
    assert!(
        text.contains(
            "note: cluster/dns will not affect these modes, which define their own: group:Paris"
        ),
        "{text}"
    );
    assert!(text.contains("lab3.example.com: new machine"), "{text}");

    let apply = strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd,
    ]);
    assert!(apply.status.success(), "{}", stderr(&apply));
    assert!(
        stdout(&apply).contains("applied change set 2"),
        "{}",
        stdout(&apply)
    );
    // The machine runs its effective config.
    let running = agent.dir.join("running");
    let dns = std::fs::read_to_string(running.join("dns.kdl")).unwrap();
    assert!(dns.contains("10.0.0.53"), "{dns}");
    assert!(
        std::fs::read_to_string(running.join("interfaces.kdl"))
            .unwrap()
            .contains("10.1.0.1/24")
    );

    let again = strata(&["plan", "--ref", "main", "--repo", &repo, "--state-dir", &sd]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    assert!(stdout(&again).contains("no changes"));

    // A second commit changes dns; JSON output for machines.
    git_repo(
        &tmp.path().join("repo"),
        &[("cluster.kdl", &CLUSTER.replace("10.0.0.53", "10.0.0.99"))],
        "new resolver",
    );
    let plan = strata(&[
        "plan",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd,
        "--format",
        "json",
    ]);
    assert_eq!(plan.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(json["actions"].as_array().unwrap().len(), 1);
    assert_eq!(json["actions"][0]["key"], "cluster/dns");
    assert_eq!(json["actions"][0]["action"], "change");
    assert!(
        strata(&[
            "apply",
            "--ref",
            "main",
            "--repo",
            &repo,
            "--state-dir",
            &sd
        ])
        .status
        .success()
    );

    let log = strata(&["log", "--state-dir", &sd, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let sets = json["change_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[1]["meta"]["source"]["commit"], commit.as_str());
    assert_eq!(sets[1]["meta"]["author"], "Ada Lovelace <ada@example.com>");
    assert_eq!(sets[1]["meta"]["message"], "americas: first\n\nbody");
    assert_eq!(sets[2]["keys"], serde_json::json!(["cluster/dns"]));
    let human = stdout(&strata(&["log", "--state-dir", &sd]));
    assert!(
        human.contains("change set 3") && human.contains("new resolver"),
        "{human}"
    );

    // Rollback to change set 2 is a new change set 4 that restores the old resolver.
    let rb = strata(&["rollback", "--to", "2", "--state-dir", &sd]);
    assert!(rb.status.success(), "{}", stderr(&rb));
    assert!(
        stdout(&rb).contains("applied change set 4"),
        "{}",
        stdout(&rb)
    );
    assert!(
        std::fs::read_to_string(running.join("dns.kdl"))
            .unwrap()
            .contains("10.0.0.53")
    );
    // The repo (at 10.0.0.99) now differs from the agent again.
    let plan = strata(&["plan", "--ref", "main", "--repo", &repo, "--state-dir", &sd]);
    assert_eq!(plan.status.code(), Some(2));
    let bad = strata(&["rollback", "--to", "99", "--state-dir", &sd]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("there is no change set 99"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_stale_plan_is_refused_with_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    let agent = created(&tmp.path().join("agent"));
    let (sd, repo) = (sd(&agent), p(&repo));
    let saved = p(&tmp.path().join("plan.json"));
    let plan = strata(&[
        "plan",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd,
        "--out",
        &saved,
    ]);
    assert_eq!(plan.status.code(), Some(2));
    // Someone else applies first.
    assert!(
        strata(&[
            "apply",
            "--ref",
            "main",
            "--repo",
            &repo,
            "--state-dir",
            &sd
        ])
        .status
        .success()
    );
    let stale = strata(&["apply", "--plan", &saved, "--state-dir", &sd]);
    assert_eq!(stale.status.code(), Some(1));
    let err = stderr(&stale);
    assert!(err.contains("the plan is stale"), "{err}");
    assert!(
        err.contains("cluster/dns was created by Ada Lovelace <ada@example.com> on"),
        "{err}"
    );
    assert!(err.contains("in change set 2 (git "), "{err}");
    // Nothing was written by the refused apply.
    let log = strata(&["log", "--state-dir", &sd, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    assert_eq!(json["change_sets"].as_array().unwrap().len(), 2);
    // A garbage plan file is a clear error.
    std::fs::write(&saved, "{}").unwrap();
    let bad = strata(&["apply", "--plan", &saved, "--state-dir", &sd]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("is not a saved plan"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn an_invalid_repo_is_not_planned() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[(
            "cluster.kdl",
            "cluster \"a\" { dns { bogus 1; } }\ngroup \"Main_Group\"\n",
        )],
        "bad",
    );
    let agent = created(&tmp.path().join("agent"));
    let out = strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &p(&repo),
        "--state-dir",
        &sd(&agent),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("is not a valid config repo"), "{err}");
    assert!(err.contains("cluster.kdl"), "{err}");
}

/// The repo's users section with an operator, a read-only user and their keys.
fn users_repo(dir: &Path, op_key: &str, ro_key: &str) {
    let users = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"admin\" role=\"administrator\"\n        user \"ada\" role=\"operator\" {{ key \"{op_key}\"; }}\n        user \"rob\" role=\"read-only\" {{ key \"{ro_key}\"; }}\n    }}\n    dns {{ server \"10.0.0.53\"; }}\n}}\ngroup \"Main_Group\"\ngroup \"Paris\"\n"
    );
    git_repo(
        dir,
        &[("cluster.kdl", &users), ("machines.kdl", MACHINES)],
        "users",
    );
}

#[test]
fn roles_and_host_keys_decide_who_gets_in() {
    let tmp = tempfile::tempdir().unwrap();
    let (op, ro, stranger) = (
        tmp.path().join("op"),
        tmp.path().join("ro"),
        tmp.path().join("x"),
    );
    let (op_pub, ro_pub) = (keypair(&op), keypair(&ro));
    keypair(&stranger);
    let repo = tmp.path().join("repo");
    users_repo(&repo, &op_pub, &ro_pub);
    let agent = created(&tmp.path().join("agent"));
    let repo = p(&repo);
    let fp = agent.fingerprint();
    let out = strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd(&agent),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let remote = |key: &Path, user: &str, fp: &str, rest: &[&str]| {
        let mut args: Vec<&str> = rest.to_vec();
        args.extend([
            "--target",
            &agent.addr,
            "--identity",
            key.to_str().unwrap(),
            "--user",
            user,
            "--fingerprint",
            fp,
        ]);
        strata(&args)
    };
    let plan_args = ["--ref", "main", "--repo", repo.as_str()];

    // Read-only may plan and log, not apply.
    let mut args = vec!["plan"];
    args.extend(plan_args);
    let out = remote(&ro, "rob", &fp, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(remote(&ro, "rob", &fp, &["log"]).status.success());
    let out = remote(&ro, "rob", &fp, &["rollback", "--to", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("user `rob` (read-only) may not apply changes"),
        "{}",
        stderr(&out)
    );

    // The operator may apply.
    let cluster = std::fs::read_to_string(tmp.path().join("repo/cluster.kdl")).unwrap();
    git_repo(
        &tmp.path().join("repo"),
        &[("cluster.kdl", &cluster.replace("10.0.0.53", "10.0.0.54"))],
        "dns",
    );
    let mut args = vec!["apply"];
    args.extend(plan_args);
    let out = remote(&op, "ada", &fp, &args);
    assert!(out.status.success(), "{}\n{}", stderr(&out), agent.log());
    let log = stdout(&remote(&ro, "rob", &fp, &["log"]));
    assert!(
        log.contains("change set 3") && log.contains("user: ada"),
        "{log}"
    );
    // Operators may not create clusters.
    let out = remote(&op, "ada", &fp, &["cluster", "create", "other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("may not create a cluster"),
        "{}",
        stderr(&out)
    );

    // A key the users section does not hold is refused, as is the right key for another user.
    let out = remote(&stranger, "ada", &fp, &["log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused user `ada`: wrong key or passphrase"),
        "{}",
        stderr(&out)
    );
    let out = remote(&ro, "ada", &fp, &["log"]);
    assert_eq!(out.status.code(), Some(1));
    // Both keys were only offered, never signed for: not refusals, so never delayed.
    let log = agent.log();
    assert_eq!(
        log.matches("login refused").count(),
        0,
        "an offered key is not a refusal: {log}"
    );

    // An unknown host key is refused before logging in.
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let out = remote(&op, "ada", wrong, &["log"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The diagnostic may wrap a long fingerprint across lines: compare without the wrapping.
    let flat: String = err.split_whitespace().filter(|w| *w != "│").collect();
    assert!(
        err.contains("refusing to talk to") && flat.contains(&fp) && flat.contains(wrong),
        "{err}"
    );
    // No pin at all is refused too.
    let out = strata(&[
        "log",
        "--target",
        &agent.addr,
        "--identity",
        op.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("host key is not pinned"),
        "{}",
        stderr(&out)
    );
    // Trust on first use records the key; the recorded key is then checked.
    let kh = tmp.path().join("known_hosts");
    let tofu = [
        "log",
        "--target",
        &agent.addr,
        "--identity",
        op.to_str().unwrap(),
        "--user",
        "ada",
        "--known-hosts",
        kh.to_str().unwrap(),
    ];
    let out = strata(&tofu);
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown host without --trust-on-first-use"
    );
    let mut first = tofu.to_vec();
    first.push("--trust-on-first-use");
    assert!(strata(&first).status.success());
    assert!(strata(&tofu).status.success(), "recorded key accepted");
}

#[test]
fn a_second_agent_on_the_same_state_dir_is_refused_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let mut agent = TestAgent::start(&dir, "lab1");
    let out = strata(&["agent", "--state-dir", &p(&dir), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another agent is running on"),
        "{}",
        stderr(&out)
    );
    let status = agent.terminate();
    assert!(status.success(), "{status}");
    assert!(
        !dir.join("address").exists(),
        "a clean stop removes the address file"
    );
}

#[test]
fn a_peer_sending_garbage_is_disconnected() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(&tmp.path().join("agent"), "lab1");
    let mut s = std::net::TcpStream::connect(&agent.addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    // The agent answers with its SSH banner and closes; read returns at EOF.
    let _ = s.read_to_end(&mut buf);
    assert!(String::from_utf8_lossy(&buf).starts_with("SSH-2.0-"));
    // And it still serves others.
    assert!(
        strata(&["log", "--state-dir", &sd(&agent)])
            .status
            .success()
    );
}

/// The `ssh` client, if installed (.ci/run installs openssh-client).
fn openssh() -> Option<std::path::PathBuf> {
    let found = ["/usr/bin/ssh", "/usr/local/bin/ssh", "/bin/ssh"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have OpenSSH's ssh client"
        );
        eprintln!("skipping: no ssh client on this machine");
    }
    found
}

#[test]
fn a_real_openssh_client_is_served_or_refused_as_its_credentials_say() {
    let Some(ssh) = openssh() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (op, ro, stranger) = (
        tmp.path().join("op"),
        tmp.path().join("ro"),
        tmp.path().join("x"),
    );
    let (op_pub, ro_pub) = (keypair(&op), keypair(&ro));
    keypair(&stranger);
    users_repo(&tmp.path().join("repo"), &op_pub, &ro_pub);
    let agent = created(&tmp.path().join("agent"));
    let repo = p(&tmp.path().join("repo"));
    assert!(
        strata(&[
            "apply",
            "--ref",
            "main",
            "--repo",
            &repo,
            "--state-dir",
            &sd(&agent)
        ])
        .status
        .success()
    );
    let port = agent.addr.rsplit_once(':').unwrap().1.to_owned();
    let kh = tmp.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{port} {}\n", agent.host_public_key()),
    )
    .unwrap();
    let empty_kh = tmp.path().join("empty_known_hosts");
    std::fs::write(&empty_kh, "").unwrap();
    let run = |key: &Path, user: &str, known: &Path, command: &str| {
        std::process::Command::new(&ssh)
            .args(["-F", "/dev/null", "-p", &port, "-i"])
            .arg(key)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=20",
            ])
            .arg(format!("{user}@127.0.0.1"))
            .arg(command)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&op, "ada", &kh, "whoami");
    assert!(out.status.success(), "{}\n{}", stderr(&out), agent.log());
    assert_eq!(stdout(&out), "ada operator on lab1.example.com\n");
    let out = run(&ro, "rob", &kh, "whoami");
    assert_eq!(stdout(&out), "rob read-only on lab1.example.com\n");
    let out = run(&op, "ada", &kh, "rm -rf /");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown command"), "{}", stderr(&out));
    // Wrong key: refused by the agent.
    let out = run(&stranger, "ada", &kh, "whoami");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    // Unknown host key: refused by ssh itself.
    let out = run(&op, "ada", &empty_kh, "whoami");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_passphrase_logs_in_against_its_argon2id_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let hash = strata::agent::users::hash_passphrase("correct horse battery").unwrap();
    let cluster = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"ada\" role=\"operator\" passphrase-hash=\"{hash}\"\n        user \"eve\" role=\"administrator\" passphrase-hash=\"{hash}\" locked=#true\n    }}\n}}\ngroup \"Main_Group\"\n"
    );
    git_repo(
        &tmp.path().join("repo"),
        &[("cluster.kdl", &cluster)],
        "users",
    );
    let agent = created(&tmp.path().join("agent"));
    let repo = p(&tmp.path().join("repo"));
    let out = strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd(&agent),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fp = agent.fingerprint();
    let login = |user: &str, pass: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "log",
                "--target",
                &agent.addr,
                "--user",
                user,
                "--fingerprint",
                &fp,
            ])
            .env("STRATA_PASSPHRASE", pass)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = login("ada", "correct horse battery");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("change set 2"));
    let out = login("ada", "wrong");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused user `ada`"),
        "{}",
        stderr(&out)
    );
    // A locked account cannot log in, even with the right passphrase.
    assert_eq!(login("eve", "correct horse battery").status.code(), Some(1));
    // Without identity or passphrase, the CLI says what is missing.
    let out = strata(&[
        "log",
        "--target",
        &agent.addr,
        "--user",
        "ada",
        "--fingerprint",
        &fp,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no identity and no passphrase"),
        "{}",
        stderr(&out)
    );
}

/// A trusting russh client, for what the `strata` CLI never does: several keys on one
/// connection, a bad signature.
mod raw {
    use std::sync::Arc;

    use russh::client;
    use russh::keys::agent::AgentIdentity;
    use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};

    pub struct Trusting;

    impl client::Handler for Trusting {
        type Error = russh::Error;

        async fn check_server_key(
            &mut self,
            _key: &PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(true)
        }
    }

    /// Signs with a well-formed ed25519 signature of zeros: never valid.
    pub struct BadSigner;

    impl russh::Signer for BadSigner {
        type Error = russh::SendError;

        async fn auth_sign(
            &mut self,
            _key: &AgentIdentity,
            _hash: Option<HashAlg>,
            mut data: Vec<u8>,
        ) -> Result<Vec<u8>, Self::Error> {
            let string = |out: &mut Vec<u8>, bytes: &[u8]| {
                out.extend((bytes.len() as u32).to_be_bytes());
                out.extend(bytes);
            };
            let mut blob = Vec::new();
            string(&mut blob, b"ssh-ed25519");
            string(&mut blob, &[0; 64]);
            string(&mut data, &blob);
            Ok(data)
        }
    }

    pub async fn connect(addr: &str) -> client::Handle<Trusting> {
        let config = Arc::new(client::Config::default());
        client::connect(config, addr, Trusting).await.unwrap()
    }

    pub async fn by_key(
        s: &mut client::Handle<Trusting>,
        user: &str,
        key: &std::path::Path,
    ) -> bool {
        let key = russh::keys::load_secret_key(key, None).unwrap();
        s.authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key), None))
            .await
            .unwrap()
            .success()
    }
}

#[test]
fn offered_keys_are_free_but_bad_signatures_and_passphrases_are_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let keys: Vec<_> = ["op", "ro", "x1", "x2"]
        .iter()
        .map(|k| tmp.path().join(k))
        .collect();
    let pubs: Vec<String> = keys.iter().map(|k| keypair(k)).collect();
    users_repo(&tmp.path().join("repo"), &pubs[0], &pubs[1]);
    let agent = created(&tmp.path().join("agent"));
    let out = strata(&[
        "apply",
        "--ref",
        "main",
        "--repo",
        &p(&tmp.path().join("repo")),
        "--state-dir",
        &sd(&agent),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let op_pub = russh::keys::PublicKey::from_openssh(&pubs[0]).unwrap();
    rt.block_on(async {
        // As OpenSSH with several keys in its agent: strangers' keys, another user's key,
        // then the right one, all on one connection.
        let mut s = raw::connect(&agent.addr).await;
        for k in [&keys[2], &keys[3], &keys[1]] {
            assert!(!raw::by_key(&mut s, "ada", k).await);
        }
        assert!(raw::by_key(&mut s, "ada", &keys[0]).await);
    });
    let log = agent.log();
    assert_eq!(log.matches("login refused").count(), 0, "{log}");
    assert!(log.contains("login accepted"), "{log}");
    rt.block_on(async {
        // The right public key with a forged signature, then a wrong passphrase: two
        // refusals in a row from this address, the second held twice as long.
        let mut s = raw::connect(&agent.addr).await;
        let signed = s
            .authenticate_publickey_with("ada", op_pub, None, &mut raw::BadSigner)
            .await
            .unwrap();
        assert!(!signed.success());
        assert!(
            !s.authenticate_password("ada", "guess")
                .await
                .unwrap()
                .success()
        );
    });
    let log = agent.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("login refused"))
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(
        refused[0].contains("delay_ms=20") && refused[0].contains("no valid signature"),
        "{log}"
    );
    assert!(
        refused[1].contains("delay_ms=40") && refused[1].contains("wrong user or passphrase"),
        "{log}"
    );
}

/// Waits for `path` to exist; panics (rather than hang) if it never does.
fn wait_for(path: &Path, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_slow_hook_holds_up_no_log_request() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let flag = |name: &str| tmp.path().join(name);
    // Once armed, the hook says it started, waits for `release`, then says it is done.
    let script = format!(
        "[ -e {armed} ] || exit 0; touch {started}; while [ ! -e {release} ]; do sleep 0.02; done; touch {done}",
        armed = p(&flag("armed")),
        started = p(&flag("started")),
        release = p(&flag("release")),
        done = p(&flag("done")),
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        format!(
            "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nhook \"sh\" \"-c\" {script:?} \"hook\"\n"
        ),
    )
    .unwrap();
    let agent = created(&dir);
    let repo = tmp.path().join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", CLUSTER), ("machines.kdl", MACHINES)],
        "v1",
    );
    std::fs::write(flag("armed"), "").unwrap();
    let apply = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "apply",
            "--ref",
            "main",
            "--repo",
            &p(&repo),
            "--state-dir",
            &sd(&agent),
        ])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&flag("started"), "the hook");
    // Should `log` wait for the hook, release it eventually so the test cannot hang.
    let release = flag("release");
    let guard = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = std::fs::write(release, "");
    });
    let log = strata(&["log", "--state-dir", &sd(&agent)]);
    assert!(log.status.success(), "{}", stderr(&log));
    assert!(
        !flag("done").exists(),
        "`log` waited for the hook to finish"
    );
    assert!(stdout(&log).contains("change set 2"), "{}", stdout(&log));
    std::fs::write(flag("release"), "").unwrap();
    let out = apply.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(flag("done").exists());
    assert!(stdout(&out).contains("hook `sh -c"), "{}", stdout(&out));
    drop(guard);
}

#[test]
fn cluster_create_fails_when_the_hooks_it_ran_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let armed = tmp.path().join("armed");
    let script = format!(
        "[ -e {} ] || exit 0; echo 'reload failed: bad dns' >&2; exit 3",
        p(&armed)
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        format!(
            "machine \"lab1\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nhook \"sh\" \"-c\" {script:?} \"hook\"\n"
        ),
    )
    .unwrap();
    let agent = TestAgent::start(&dir, "lab1");
    // A running file lost out of band: the run after `cluster create` writes it again,
    // which runs the hooks.
    std::fs::remove_file(dir.join("running/dns.kdl")).unwrap();
    std::fs::write(&armed, "").unwrap();
    let out = strata(&["cluster", "create", "americas", "--state-dir", &sd(&agent)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("change set 1 was committed, but hooks failed on lab1")
            && err.contains("reload failed: bad dns"),
        "{err}"
    );
    assert!(dir.join("running/dns.kdl").exists());
    assert!(agent.log().contains("hook failed"), "{}", agent.log());
}
