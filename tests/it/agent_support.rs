//! Helpers for tests that run real `strata agent` processes on loopback ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use russh::keys::{Algorithm, HashAlg, PrivateKey};

/// A running agent process; killed when dropped.
pub struct TestAgent {
    /// The process.
    pub child: Child,
    /// Its state dir.
    pub dir: PathBuf,
    /// Where it listens, `IP:PORT` (`127.0.0.1:PORT` unless started with `start_on`).
    pub addr: String,
}

impl TestAgent {
    /// Starts an agent on a free loopback port (the agent binds port 0 and writes the
    /// bound address to `address` in its state dir once it listens).
    pub fn start(dir: &Path, machine: &str) -> TestAgent {
        TestAgent::start_on(dir, machine, "127.0.0.1:0")
    }

    /// Starts an agent listening on `listen` (`--listen`, which overrides `agent.kdl`'s;
    /// an `agent.kdl` already in `dir` is kept, else a default one is written) and waits
    /// until it listens.
    pub fn start_on(dir: &Path, machine: &str, listen: &str) -> TestAgent {
        TestAgent::start_with_env(dir, machine, listen, &[])
    }

    /// As [`TestAgent::start_on`], with `env` set for the agent (`STRATA_TEST_VERSION`,
    /// say: the Strata version a debug build says it runs).
    pub fn start_with_env(
        dir: &Path,
        machine: &str,
        listen: &str,
        env: &[(&str, &str)],
    ) -> TestAgent {
        TestAgent::launch(&std::env::current_dir().unwrap(), dir, machine, listen, env)
    }

    /// Starts an agent run from directory `cwd` with a relative `--state-dir`
    /// (`cwd/relative`), on a free loopback port.
    pub fn start_relative(cwd: &Path, relative: &Path, machine: &str) -> TestAgent {
        assert!(relative.is_relative(), "{}", relative.display());
        TestAgent::launch(cwd, relative, machine, "127.0.0.1:0", &[])
    }

    /// Starts an agent in directory `cwd` with `--state-dir STATE_DIR` and `env` set,
    /// and waits until it listens.
    fn launch(
        cwd: &Path,
        state_dir: &Path,
        machine: &str,
        listen: &str,
        env: &[(&str, &str)],
    ) -> TestAgent {
        let dir = &cwd.join(state_dir);
        let address = dir.join("address");
        let _ = std::fs::remove_file(&address);
        std::fs::create_dir_all(dir).unwrap();
        // Short refusal delays keep the tests quick; the growth is what is tested.
        let settings = dir.join("agent.kdl");
        if !settings.exists() {
            let text = format!("machine \"{machine}\"\nlisten \"{listen}\"\nauth-delay-ms 20\n");
            std::fs::write(settings, text).unwrap();
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.stderr"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(cwd)
            .args(["agent", "--state-dir"])
            .arg(state_dir)
            .args(["--listen", listen, "--machine", machine])
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        let mut agent = TestAgent {
            child,
            dir: dir.to_path_buf(),
            addr: String::new(),
        };
        // Waiting for a file the agent writes once it listens: no fixed sleeps.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&address) {
                agent.addr = text.trim().to_owned();
                return agent;
            }
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!("the agent exited early: {status}");
            }
            assert!(Instant::now() < deadline, "the agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.stderr")).unwrap_or_default()
    }

    /// The host key's fingerprint, as OpenSSH prints it.
    pub fn fingerprint(&self) -> String {
        host_key_fingerprint(&self.dir)
    }

    /// The host key's public half in OpenSSH format.
    pub fn host_public_key(&self) -> String {
        host_public_key(&self.dir)
    }

    /// Kills the agent with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the agent to stop with SIGTERM and waits for it.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The fingerprint of the host key in state dir `dir`, as OpenSSH prints it (the key
/// stays after the agent stops).
pub fn host_key_fingerprint(dir: &Path) -> String {
    let key = russh::keys::load_secret_key(dir.join("host_key"), None).unwrap();
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

/// The public half of the host key in state dir `dir`, in OpenSSH format.
pub fn host_public_key(dir: &Path) -> String {
    let key = russh::keys::load_secret_key(dir.join("host_key"), None).unwrap();
    key.public_key().to_openssh().unwrap()
}

/// Runs `strata` with `args` (no colour, never wrapped).
pub fn strata(args: &[&str]) -> Output {
    strata_with_env(args, &[])
}

/// Runs `strata` with `args` and `env` set (HOME, SSH_AUTH_SOCK, …): no colour, never
/// wrapped, and no ssh-agent or passphrase of the environment's unless `env` gives one.
pub fn strata_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .env("NO_COLOR", "1")
        // Wide, so messages with addresses and fingerprints are never wrapped mid-assertion.
        .env("COLUMNS", "400")
        .env_remove("STRATA_PASSPHRASE")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("STRATA_SSH_CONFIG")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// stdout of a run.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr of a run.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes a new ed25519 key pair: `path` (private, 0600) and `path.pub`; returns the
/// public key line.
pub fn keypair(path: &Path) -> String {
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
    let private = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .unwrap();
    std::fs::write(path, private.as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let public = key.public_key().to_openssh().unwrap();
    std::fs::write(path.with_extension("pub"), format!("{public}\n")).unwrap();
    public
}

/// A git repository at `dir` with `files`, committed on `main`; returns the commit id.
pub fn git_repo(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    crate::git::commit_all(dir, ("Ada Lovelace", "ada@example.com"), message).unwrap()
}

/// A small cluster for the agent tests: two groups, a group override.
pub const CLUSTER: &str = r#"
cluster "americas" {
    dns { server "10.0.0.53" priority=0; }
    ntp { server "ntp1.example.com"; }
}
group "Main_Group"
group "Paris" { dns { server "192.0.2.53" priority=0; } }
"#;

/// Its machines: lab1 (Main_Group) and lab3 (Paris).
pub const MACHINES: &str = r#"
machine "lab1.example.com" address="10.1.0.1" {
    interfaces { interface "Data1" address="10.1.0.1/24" hostname="lab1.example.com"; }
}
machine "lab3.example.com" group="Paris" address="10.1.0.3"
"#;

/// The stdout of a run that must succeed; panics with its exit code and both streams
/// otherwise.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// The agent's state dir, as an argument.
pub fn sd(agent: &TestAgent) -> String {
    agent.dir.display().to_string()
}

/// A path as an argument.
pub fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A cluster created on a fresh agent.
pub fn created(dir: &Path) -> TestAgent {
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

/// The ids of the agent's change sets, oldest first, in the short form people see.
pub fn change_set_ids(sd: &str) -> Vec<String> {
    let log = strata(&["log", "--state-dir", sd, "--format", "json"]);
    assert!(log.status.success(), "{}", stderr(&log));
    let json: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    // The log runs newest first.
    json["change_sets"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|cs| cs["id"].as_str().unwrap()[..10].to_owned())
        .collect()
}

/// Waits for `path` to exist; panics (rather than hang) if it never does.
pub fn wait_for(path: &Path, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// An agent (with a cluster created) whose hook, once armed, says it started and then
/// waits to be released: a change set held mid-run, for tests of what happens meanwhile.
pub struct HeldHook {
    /// The agent.
    pub agent: TestAgent,
    flags: PathBuf,
}

impl HeldHook {
    /// Starts the agent under `tmp/agent`; flag files live in `tmp`.
    pub fn start(tmp: &Path) -> HeldHook {
        let dir = tmp.join("agent");
        let flag = |name: &str| p(&tmp.join(name));
        let script = format!(
            // Bounded (two minutes), so a test that fails before releasing it leaves no
            // process behind.
            "[ -e {armed} ] || exit 0; touch {started}; i=0; while [ ! -e {release} ] && [ $i -lt 6000 ]; do sleep 0.02; i=$((i+1)); done; touch {done}",
            armed = flag("armed"),
            started = flag("started"),
            release = flag("release"),
            done = flag("done"),
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("agent.kdl"),
            format!(
                "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nhook \"sh\" \"-c\" {script:?} \"hook\"\n"
            ),
        )
        .unwrap();
        HeldHook {
            agent: created(&dir),
            flags: tmp.to_path_buf(),
        }
    }

    /// The flag file called `name`.
    pub fn flag(&self, name: &str) -> PathBuf {
        self.flags.join(name)
    }

    /// Starts `strata apply --ref main` of `repo` with the hook armed, and returns once
    /// the hook is running.
    pub fn apply_held(&self, repo: &Path) -> Child {
        std::fs::write(self.flag("armed"), "").unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args([
                "apply",
                "--yes",
                "--ref",
                "main",
                "--repo",
                &p(repo),
                "--state-dir",
                &sd(&self.agent),
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&self.flag("started"), "the hook");
        child
    }

    /// Lets the hook finish.
    pub fn release(&self) {
        std::fs::write(self.flag("release"), "").unwrap();
    }
}

/// `strata plan --ref main --repo REPO --state-dir SD`.
pub fn plan_main(repo: &str, sd: &str) -> Output {
    strata(&["plan", "--ref", "main", "--repo", repo, "--state-dir", sd])
}

/// `strata apply --ref main --repo REPO --state-dir SD`, which must succeed; its stdout.
pub fn apply_main(repo: &str, sd: &str) -> String {
    let out = strata(&[
        "apply",
        "--yes",
        "--ref",
        "main",
        "--repo",
        repo,
        "--state-dir",
        sd,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// `strata log` against `agent` over SSH as `user`, logging in with `passphrase`
/// (STRATA_PASSPHRASE), the host key pinned; not yet run.
pub fn log_with_passphrase(agent: &TestAgent, user: &str, passphrase: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.args(["log", "--target", &agent.addr, "--user", user])
        .args(["--fingerprint", &agent.fingerprint()])
        .env("STRATA_PASSPHRASE", passphrase)
        .env_remove("SSH_AUTH_SOCK")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}
