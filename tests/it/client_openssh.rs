//! End to end: the client follows OpenSSH's conventions against a real agent — an
//! `~/.ssh/config` alias as `--target` (HostName, Port, User, UserKnownHostsFile), a key
//! held by a real `ssh-agent`, the default `~/.ssh/id_*` keys, and an encrypted key
//! refused without a terminal, naming ssh-agent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::agent_support::{
    MACHINES, apply_main, created, git_repo, keypair, p, sd, stderr, strata_with_env,
};
use crate::support::regex_escape;

/// OpenSSH's `ssh-agent` and `ssh-add`, if installed (.ci/run installs openssh-client).
fn openssh_agent() -> bool {
    let found = ["ssh-agent", "ssh-add", "ssh-keygen"].iter().all(|tool| {
        Command::new(tool)
            .arg("-?")
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok()
    });
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have OpenSSH's ssh-agent"
        );
        eprintln!("skipping: no ssh-agent on this machine");
    }
    found
}

/// A real `ssh-agent` in the foreground on a socket of its own; killed when dropped.
struct SshAgent {
    child: Child,
    socket: PathBuf,
}

impl SshAgent {
    fn start(socket: &Path) -> SshAgent {
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        // The socket file appears at bind, before the agent listens: wait for a connect.
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(Instant::now() < deadline, "ssh-agent did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        SshAgent {
            child,
            socket: socket.to_path_buf(),
        }
    }

    /// `ssh-add KEY`, its passphrase given through SSH_ASKPASS as a person would type it.
    fn add(&self, key: &Path, passphrase: &str, scratch: &Path) {
        let askpass = scratch.join("askpass.sh");
        std::fs::write(&askpass, format!("#!/bin/sh\necho '{passphrase}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ed25519 key encrypted with `passphrase`, by ssh-keygen; returns the public line.
fn encrypted_keypair(path: &Path, passphrase: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-C",
            "ada@laptop",
            "-N",
            passphrase,
            "-f",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

/// An agent whose users are ada (an encrypted key at `~/.ssh/id_ed25519` of `home`) and
/// rob (a plain key of his own), and `~/.ssh/config` naming it `lab1` and `lab1-new`.
struct Lab {
    agent: crate::agent_support::TestAgent,
    home: PathBuf,
    ssh: PathBuf,
    rob: PathBuf,
    port: String,
}

fn lab(dir: &Path) -> Lab {
    let home = dir.join("home");
    let ssh = home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    // Ada's key is encrypted, at the default place; Rob's is a plain file of his own.
    let ada_pub = encrypted_keypair(&ssh.join("id_ed25519"), "correct horse");
    let rob = dir.join("rob");
    let rob_pub = keypair(&rob);
    let users = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"admin\" role=\"administrator\"\n        user \"ada\" role=\"operator\" {{ key \"{ada_pub}\"; }}\n        user \"rob\" role=\"read-only\" {{ key \"{rob_pub}\"; }}\n    }}\n}}\ngroup \"Main_Group\"\ngroup \"Paris\"\n"
    );
    let repo = dir.join("repo");
    git_repo(
        &repo,
        &[("cluster.kdl", &users), ("machines.kdl", MACHINES)],
        "users",
    );
    let agent = created(&dir.join("agent"));
    apply_main(&p(&repo), &sd(&agent));
    let port = agent.addr.rsplit_once(':').unwrap().1.to_owned();
    // The host key pinned where the config's UserKnownHostsFile says, not in
    // ~/.ssh/known_hosts; `lab1-new` records into a file of its own.
    std::fs::write(
        ssh.join("strata_hosts"),
        format!("[127.0.0.1]:{port} {}\n", agent.host_public_key()),
    )
    .unwrap();
    std::fs::write(
        ssh.join("config"),
        format!(
            "Host lab1 lab1-new\n    HostName 127.0.0.1\n    Port {port}\n    User ada\n\
             Host lab1\n    UserKnownHostsFile ~/.ssh/strata_hosts\n\
             Host lab1-new\n    UserKnownHostsFile %d/.ssh/learned_%n\n\
             Host *\n    ForwardAgent no\n    ServerAliveInterval 30\n"
        ),
    )
    .unwrap();
    Lab {
        agent,
        home,
        ssh,
        rob,
        port,
    }
}

#[test]
fn an_ssh_config_alias_and_the_ssh_agent_log_in_as_openssh_would() {
    if !openssh_agent() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Lab {
        agent,
        home,
        ssh,
        rob,
        port,
    } = lab(tmp.path());
    let sock = tmp.path().join("agent.sock");
    let ssh_agent = SshAgent::start(&sock);
    ssh_agent.add(&ssh.join("id_ed25519"), "correct horse", tmp.path());
    let home_s = p(&home);
    let sock_s = p(&sock);
    let with_agent = [
        ("HOME", home_s.as_str()),
        ("SSH_AUTH_SOCK", sock_s.as_str()),
    ];
    let without_agent = [("HOME", home_s.as_str())];

    // The alias, the agent's key for the encrypted file: logged in as ada, no prompt.
    let out = strata_with_env(&["log", "--target", "lab1"], &with_agent);
    assert!(out.status.success(), "{}\n{}", stderr(&out), agent.log());
    assert!(agent.log().contains("user=\"ada\""), "{}", agent.log());
    // So does --identity naming the encrypted file, when the agent holds its key.
    let id = p(&ssh.join("id_ed25519"));
    let out = strata_with_env(&["log", "--target", "lab1", "--identity", &id], &with_agent);
    assert!(out.status.success(), "{}", stderr(&out));

    // Without the agent and without a terminal, the encrypted key is refused, clearly:
    // after the plain keys at hand were (a stranger's, at ~/.ssh/id_rsa), or at once.
    keypair(&ssh.join("id_rsa"));
    let (home_re, port_re) = (regex_escape(&home_s), format!(r"127\.0\.0\.1:{port}"));
    let out = strata_with_env(&["log", "--target", "lab1"], &without_agent);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let default_refused = stderr(&out);
    let out = strata_with_env(
        &["log", "--target", "lab1", "--identity", &id],
        &without_agent,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let explicit_refused = stderr(&out);
    let filters = vec![
        (home_re.as_str(), "[HOME]"),
        (port_re.as_str(), "127.0.0.1:[PORT]"),
    ];
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!(
            "encrypted_key_without_terminal",
            format!("$ strata log --target lab1\n{default_refused}\n$ strata log --target lab1 --identity ~/.ssh/id_ed25519\n{explicit_refused}")
        );
    });

    // A plain key of one's own and --user win over the config's User; the alias still
    // gives the address and the pin.
    let out = strata_with_env(
        &[
            "log",
            "--target",
            "lab1",
            "--user",
            "rob",
            "--identity",
            &p(&rob),
        ],
        &without_agent,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Rob's key at the default place: found without --identity.
    std::fs::rename(ssh.join("id_ed25519"), tmp.path().join("ada_key")).unwrap();
    std::fs::copy(&rob, ssh.join("id_ecdsa")).unwrap();
    let out = strata_with_env(
        &["log", "--target", "lab1", "--user", "rob"],
        &without_agent,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // UserKnownHostsFile feeds the pinning: a host it does not know is refused, then
    // learned there on first use, and the learned key is checked from then on.
    let out = strata_with_env(&["log", "--target", "lab1-new"], &with_agent);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("learned_lab1-new has no key for lab1-new"),
        "{}",
        stderr(&out)
    );
    let out = strata_with_env(
        &["log", "--target", "lab1-new", "--trust-on-first-use"],
        &with_agent,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let learned = std::fs::read_to_string(ssh.join("learned_lab1-new")).unwrap();
    assert!(learned.contains("ssh-ed25519"), "{learned}");
    let out = strata_with_env(&["log", "--target", "lab1-new"], &with_agent);
    assert!(out.status.success(), "{}", stderr(&out));

    // A bad config is named, and the run stops before connecting.
    std::fs::write(ssh.join("config"), "Host lab1\n    Port many\n").unwrap();
    let out = strata_with_env(&["log", "--target", "lab1"], &with_agent);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot parse the SSH config"),
        "{}",
        stderr(&out)
    );
}

/// tmux, if installed (.ci/run installs it): a real terminal to type a passphrase on.
fn tmux() -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "CI must have tmux");
        eprintln!("skipping: no tmux on this machine");
    }
    found
}

#[test]
fn an_encrypted_key_is_unlocked_with_its_passphrase_typed_on_the_terminal() {
    if !openssh_agent() || !tmux() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Lab { agent, home, .. } = lab(tmp.path());
    let socket = tmp.path().join("tmux.sock");
    let rc = tmp.path().join("rc");
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    let script = format!(
        "unset SSH_AUTH_SOCK STRATA_PASSPHRASE STRATA_SSH_CONFIG; HOME='{}' NO_COLOR=1 '{}' log --target lab1 2>'{}/err'; echo $? >'{}'",
        home.display(),
        env!("CARGO_BIN_EXE_strata"),
        tmp.path().display(),
        rc.display()
    );
    let out = tmux(&[
        "new-session",
        "-d",
        "-x",
        "200",
        "-y",
        "20",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p"]).stdout).into_owned();
    let wait_for = |what: &str, count: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while screen().matches(what).count() < count {
            assert!(Instant::now() < deadline, "no {what:?} on:\n{}", screen());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // A wrong passphrase is asked again; the right one logs in as ada.
    wait_for("Enter passphrase for key '", 1);
    assert!(screen().contains(".ssh/id_ed25519':"), "{}", screen());
    tmux(&["send-keys", "wrong horse", "Enter"]);
    wait_for("Bad passphrase, try again for ", 1);
    assert!(
        !screen().contains("wrong horse"),
        "echo must be off: {}",
        screen()
    );
    tmux(&["send-keys", "correct horse", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rc.exists() {
        assert!(
            Instant::now() < deadline,
            "strata did not finish: {}",
            screen()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = tmux(&["kill-server"]);
    let err = std::fs::read_to_string(tmp.path().join("err")).unwrap_or_default();
    assert_eq!(std::fs::read_to_string(&rc).unwrap().trim(), "0", "{err}");
    assert!(agent.log().contains("user=\"ada\""), "{}", agent.log());
}
