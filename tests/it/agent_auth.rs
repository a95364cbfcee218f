//! End to end: who gets into a real agent — roles, host-key pinning, keys offered and
//! signed, passphrases against argon2id hashes, and a real OpenSSH client.

use std::path::Path;

use strata::protocol::{Client, ClientOptions, HostKeyPin, Login, PeerError};

use crate::agent_support::{
    MACHINES, apply_main, change_set_ids, created, git_repo, keypair, log_with_passphrase, p, sd,
    stderr, stdout, strata,
};
use crate::support::{regex_escape, unwrapped};

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
        "--yes",
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
    let first = change_set_ids(&sd(&agent))[0].clone();
    let out = remote(&ro, "rob", &fp, &["rollback", "--yes", "--to", &first]);
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
    let mut args = vec!["apply", "--yes"];
    args.extend(plan_args);
    let out = remote(&op, "ada", &fp, &args);
    assert!(out.status.success(), "{}\n{}", stderr(&out), agent.log());
    let log = stdout(&remote(&ro, "rob", &fp, &["log"]));
    assert!(log.contains("  #3  ") && log.contains("user: ada"), "{log}");
    // Operators may not make themselves administrators, nor change membership: as on
    // AsyncOS, only administrators change users, roles and membership.
    let cluster = std::fs::read_to_string(tmp.path().join("repo/cluster.kdl")).unwrap();
    git_repo(
        &tmp.path().join("repo"),
        &[(
            "cluster.kdl",
            &cluster.replace(
                "\"ada\" role=\"operator\"",
                "\"ada\" role=\"administrator\"",
            ),
        )],
        "promote ada",
    );
    let mut args = vec!["apply", "--yes"];
    args.extend(plan_args);
    let out = remote(&op, "ada", &fp, &args);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("only administrators may change users, roles and membership; the change set writes cluster/users"),
        "{}",
        stderr(&out)
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
            "--yes",
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
    // `command` "" asks for a shell (with a forced terminal, as `ssh -tt` does).
    let run = |key: &Path, user: &str, known: &Path, command: &str| {
        let tty = if command.is_empty() { "force" } else { "no" };
        std::process::Command::new(&ssh)
            .args(["-F", "/dev/null", "-o", &format!("RequestTTY={tty}")])
            .args(["-p", &port, "-i"])
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
            .args((!command.is_empty()).then_some(command))
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
    // A shell (`ssh -tt host`) is answered, not left hanging.
    let out = run(&op, "ada", &kh, "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no shell here"), "{}", stderr(&out));
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
    let hash = strata::cluster::users::hash_passphrase("correct horse battery").unwrap();
    let cluster = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"ada\" role=\"operator\" passphrase-hash=\"{hash}\"\n        user \"eve\" role=\"administrator\" passphrase-hash=\"{hash}\" locked=#true\n    }}\n}}\ngroup \"Main_Group\"\n"
    );
    // The agent's own machine is declared: an apply that removed it would be refused.
    git_repo(
        &tmp.path().join("repo"),
        &[
            ("cluster.kdl", &cluster),
            ("machines.kdl", "machine \"lab1.example.com\"\n"),
        ],
        "users",
    );
    let agent = created(&tmp.path().join("agent"));
    let repo = p(&tmp.path().join("repo"));
    let out = strata(&[
        "apply",
        "--yes",
        "--ref",
        "main",
        "--repo",
        &repo,
        "--state-dir",
        &sd(&agent),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fp = agent.fingerprint();
    let login = |user: &str, pass: &str| log_with_passphrase(&agent, user, pass).output().unwrap();
    let out = login("ada", "correct horse battery");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("  #2  "), "{}", stdout(&out));
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
    apply_main(&p(&tmp.path().join("repo")), &sd(&agent));
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
        // The right public key with a forged signature, then a passphrase at once: the
        // signature is counted as a refusal when the next attempt comes, and that
        // attempt, from an address with a delay pending, is not checked.
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
        // Once the delay has passed, a wrong passphrase is checked: the second refusal
        // in a row from this address, held twice as long.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut s = raw::connect(&agent.addr).await;
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
        .filter(|l| l.contains("login refused") || l.contains("login not checked"))
        .collect();
    assert_eq!(refused.len(), 3, "{log}");
    assert!(
        refused[0].contains("delay_ms=20") && refused[0].contains("no valid signature"),
        "{log}"
    );
    assert!(
        refused[1].contains("login delayed after failed attempts; retry in 1 s"),
        "{log}"
    );
    assert!(
        refused[2].contains("delay_ms=40") && refused[2].contains("wrong user or passphrase"),
        "{log}"
    );
}

/// Issue 20: guesses from many addresses made a user's delay 30 s, which every attempt
/// waited out before it was checked; the real administrator's login then timed out and
/// the client reported the agent unreachable (exit 69).
#[test]
fn guessing_from_many_addresses_slows_the_real_user_but_never_locks_them_out() {
    let tmp = tempfile::tempdir().unwrap();
    let hash = strata::cluster::users::hash_passphrase("correct horse battery").unwrap();
    let cluster = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"admin\" role=\"administrator\" passphrase-hash=\"{hash}\"\n        user \"bob\" role=\"operator\" passphrase-hash=\"{hash}\"\n    }}\n}}\ngroup \"Main_Group\"\nmachine \"lab1.example.com\"\n"
    );
    git_repo(
        &tmp.path().join("repo"),
        &[("cluster.kdl", &cluster)],
        "users",
    );
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    // A refusal earns 3 s, doubled per further one.
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 3000\n",
    )
    .unwrap();
    let agent = created(&dir);
    apply_main(&p(&tmp.path().join("repo")), &sd(&agent));

    // Six guesses at once for `admin`, each from its own address: the user's delay
    // grows to 30 s.
    let (host, port) = agent.addr.rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let guesses = rt.block_on(async {
        let mut tasks = Vec::new();
        for n in 2..8u8 {
            let mut options = ClientOptions::new(
                host,
                port,
                HostKeyPin::Fingerprint(agent.fingerprint()),
                "admin",
                Login::Passphrase(format!("guess {n}")),
            );
            options.bind = Some(std::net::IpAddr::from([127, 0, 0, n]));
            tasks.push(tokio::spawn(Client::connect(options)));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().err().expect("a guess logged in"));
        }
        out
    });
    for e in &guesses {
        assert!(matches!(e, PeerError::Login { .. }), "{e}");
    }
    assert_eq!(agent.log().matches("wrong user or passphrase").count(), 6);

    // The real administrator, from another address: held a few seconds, then in.
    let out = log_with_passphrase(&agent, "admin", "correct horse battery")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Keys and other users are not held at all.
    let out = strata(&["log", "--state-dir", &sd(&agent)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = log_with_passphrase(&agent, "bob", "correct horse battery")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // An address whose own refusal earned a delay is told when to retry, with its own
    // exit code, while that refusal is still held: never "unreachable".
    let mut wrong = log_with_passphrase(&agent, "bob", "wrong")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let refused = |log: String| {
        log.lines()
            .any(|l| l.contains("login refused") && l.contains("user=\"bob\""))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !refused(agent.log()) {
        assert!(std::time::Instant::now() < deadline, "{}", agent.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = log_with_passphrase(&agent, "bob", "correct horse battery")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}\n{}",
        stderr(&out),
        agent.log()
    );
    let text = unwrapped(&out.stderr);
    assert!(
        text.contains("login delayed after failed attempts; retry in"),
        "{text}"
    );
    assert!(
        !text.contains("unreachable") && !text.contains("running"),
        "{text}"
    );
    let addr = regex_escape(&agent.addr);
    insta::with_settings!({ filters => vec![
        (addr.as_str(), "[ADDR]"),
        (r"(retry in|wait) \d+ s", "$1 [N] s"),
    ] }, {
        insta::assert_snapshot!("login_delayed", stderr(&out));
    });
    assert_eq!(wrong.wait().unwrap().code(), Some(1));
}

#[test]
fn an_rsa_key_logs_in_with_strata_and_with_openssh() {
    let Some(ssh) = openssh() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("rsa");
    let made = std::process::Command::new(ssh.with_file_name("ssh-keygen"))
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let cluster = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"admin\" role=\"administrator\"\n        user \"rosa\" role=\"operator\" {{ key \"{}\"; }}\n    }}\n}}\ngroup \"Main_Group\"\nmachine \"lab1.example.com\"\n",
        public.trim()
    );
    git_repo(
        &tmp.path().join("repo"),
        &[("cluster.kdl", &cluster)],
        "rsa user",
    );
    let agent = created(&tmp.path().join("agent"));
    apply_main(&p(&tmp.path().join("repo")), &sd(&agent));
    let fp = agent.fingerprint();
    let out = strata(&[
        "log",
        "--target",
        &agent.addr,
        "--user",
        "rosa",
        "--identity",
        &p(&key),
        "--fingerprint",
        &fp,
    ]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), agent.log());
    let port = agent.addr.rsplit_once(':').unwrap().1.to_owned();
    let kh = tmp.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{port} {}\n", agent.host_public_key()),
    )
    .unwrap();
    let out = std::process::Command::new(&ssh)
        .args(["-F", "/dev/null", "-p", &port, "-i"])
        .arg(&key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "rosa@127.0.0.1",
            "whoami",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", stderr(&out), agent.log());
    assert_eq!(stdout(&out), "rosa operator on lab1.example.com\n");
}
