//! A multi-agent harness for mesh tests: N real `strata agent` processes, machine `i`
//! (1-based) named `labI.example.com` on `127.0.0.(10+i)`, each behind its own
//! fault-injecting relay (`tests/support/relay.rs`), so a test can cut a link or isolate a
//! machine for real.
//!
//! Machine `i`'s agent listens on `127.0.0.(10+i):0` (the real port is read from its
//! state dir's `address` file); its relay listens on `127.0.0.(10+i):R` and forwards to
//! it; its `agent.kdl` says `address "127.0.0.(10+i):R"`, the address it tells peers, so
//! every peer connection to machine `i` goes through relay `i`. The relays know a peer by
//! its source IP (the mesh binds outgoing connections to the agent's listen IP).
//!
//! The test's own CLI runs ([`MeshHarness::strata`]) use `--state-dir`, which reads the
//! `address` file and connects to the agent directly from `127.0.0.1`: they bypass the
//! relays and no cut ever stops them. [`MeshHarness::strata_via_relay`] goes through
//! machine `i`'s relay, still from `127.0.0.1` (outside, never cut).
//!
//! Linux routes all of `127.0.0.0/8` to `lo` with no setup, so the extra addresses just
//! work (on macOS each would need `ifconfig lo0 alias 127.0.0.N`); its local route says
//! `src 127.0.0.1`, so a connection that binds no address — the CLI's — comes from
//! `127.0.0.1` whichever 127.0.0.x it goes to.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::agent_support::{TestAgent, host_key_fingerprint, host_public_key, ok, strata};
use crate::relay::{Relays, machine_ip};

/// The admin passphrase of a cluster [`MeshHarness::form`] makes.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// One machine of the harness; its agent may be down (after [`MeshHarness::kill9`]).
pub struct MeshMachine {
    /// 1-based index.
    pub index: usize,
    /// `labI.example.com`.
    pub name: String,
    /// `127.0.0.(10+i)`: where the agent and the relay listen.
    pub ip: Ipv4Addr,
    /// The relay's address: what `agent.kdl` tells peers.
    pub relay: SocketAddr,
    /// The state dir (kept across restarts).
    pub dir: PathBuf,
    /// The Strata version its agent says it runs (`STRATA_TEST_VERSION`), if not the
    /// build's: set by [`MeshHarness::restart_as`].
    pub version: Option<String>,
    agent: Option<TestAgent>,
}

impl MeshMachine {
    /// The agent's real listening address (from its `address` file); panics if it is down.
    pub fn agent_addr(&self) -> SocketAddr {
        let agent = self
            .agent
            .as_ref()
            .unwrap_or_else(|| panic!("{} is down", self.name));
        agent.addr.parse().expect("the address file holds IP:PORT")
    }

    /// Whether the agent process is running (started and not killed by the harness).
    pub fn is_running(&self) -> bool {
        self.agent.is_some()
    }

    /// The agent's process id, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.agent.as_ref().map(|a| a.child.id())
    }

    /// The host key's fingerprint (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        host_key_fingerprint(&self.dir)
    }

    /// The host key's public half, in OpenSSH format.
    pub fn host_public_key(&self) -> String {
        host_public_key(&self.dir)
    }

    /// What the agent logged so far, over all its runs (stderr, appended per start).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.stderr")).unwrap_or_default()
    }

    /// The state dir, as an argument.
    pub fn sd(&self) -> String {
        self.dir.display().to_string()
    }

    /// The state dir's local administrator key (the agent creates it on first start).
    pub fn local_key(&self) -> PathBuf {
        self.dir.join("local_key")
    }

    fn listen(&self) -> String {
        format!("{}:0", self.ip)
    }
}

/// N agents behind N relays; every agent is killed when the harness is dropped.
pub struct MeshHarness {
    // Dropped first: the agents, then the relays.
    machines: Vec<MeshMachine>,
    /// The relays and the links between machines: `cut`, `restore`, `isolate`, `heal`,
    /// byte counts.
    pub relays: Relays,
}

impl MeshHarness {
    /// Starts machines `1..=n` with state dirs `tmp/labI` and waits until each agent
    /// listens.
    pub fn start(tmp: &Path, n: usize) -> MeshHarness {
        MeshHarness::start_with(tmp, n, |_| String::new())
    }

    /// As [`MeshHarness::start`], with `extra(i)` appended to machine `i`'s `agent.kdl`
    /// (a `source` to follow, say).
    pub fn start_with(tmp: &Path, n: usize, extra: impl Fn(usize) -> String) -> MeshHarness {
        let relays = Relays::new(n);
        let mut machines: Vec<MeshMachine> = (1..=n)
            .map(|i| {
                let name = format!("lab{i}.example.com");
                let ip = machine_ip(i);
                let relay = relays.add(i, None);
                let dir = tmp.join(format!("lab{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                let settings = format!(
                    "machine \"{name}\"\nlisten \"{ip}:0\"\naddress \"{relay}\"\nauth-delay-ms 20\n{}",
                    extra(i)
                );
                std::fs::write(dir.join("agent.kdl"), settings).unwrap();
                MeshMachine {
                    index: i,
                    name,
                    ip,
                    relay,
                    dir,
                    version: None,
                    agent: None,
                }
            })
            .collect();
        // Started side by side: each start waits for its agent's `address` file.
        std::thread::scope(|s| {
            for m in &mut machines {
                s.spawn(move || m.agent = Some(TestAgent::start_on(&m.dir, &m.name, &m.listen())));
            }
        });
        for m in &machines {
            relays.set_target(m.index, Some(m.agent_addr()));
        }
        MeshHarness { machines, relays }
    }

    /// The number of machines.
    pub fn len(&self) -> usize {
        self.machines.len()
    }

    /// Machine `i` (1-based).
    pub fn machine(&self, i: usize) -> &MeshMachine {
        assert!(
            (1..=self.len()).contains(&i),
            "no machine {i} of {}",
            self.len()
        );
        &self.machines[i - 1]
    }

    /// Every machine, in order.
    pub fn machines(&self) -> impl Iterator<Item = &MeshMachine> {
        self.machines.iter()
    }

    /// Runs `strata ARGS --state-dir SD` against machine `i`, directly (not through its
    /// relay: never cut).
    pub fn strata(&self, i: usize, args: &[&str]) -> Output {
        let sd = self.machine(i).sd();
        let mut all = args.to_vec();
        all.extend(["--state-dir", &sd]);
        strata(&all)
    }

    /// Runs `strata ARGS` against machine `i` through its relay: `--target RELAY`,
    /// pinned by `--fingerprint`, logged in with the state dir's local key. From
    /// `127.0.0.1`, so outside and never cut; what it sends is counted as from outside.
    pub fn strata_via_relay(&self, i: usize, args: &[&str]) -> Output {
        let m = self.machine(i);
        let (relay, fp, key) = (
            m.relay.to_string(),
            m.fingerprint(),
            m.local_key().display().to_string(),
        );
        let mut all = args.to_vec();
        all.extend(["--target", &relay, "--fingerprint", &fp]);
        all.extend(["--identity", &key, "--user", "admin"]);
        strata(&all)
    }

    /// Kills machine `i`'s agent with SIGKILL and waits for it; its relay refuses new
    /// connections (closes them) until [`MeshHarness::restart`].
    pub fn kill9(&mut self, i: usize) {
        self.relays.set_target(i, None);
        if let Some(mut agent) = self.machines[i - 1].agent.take() {
            agent.kill9();
        }
    }

    /// Stops machine `i`'s agent with SIGTERM; returns how it exited.
    pub fn terminate(&mut self, i: usize) -> std::process::ExitStatus {
        self.relays.set_target(i, None);
        let mut agent = self.machines[i - 1]
            .agent
            .take()
            .unwrap_or_else(|| panic!("machine {i} is down"));
        agent.terminate()
    }

    /// Starts machine `i`'s agent again on the same state dir (killing it first if it
    /// runs), waits until it listens, and points its relay at the new port.
    pub fn restart(&mut self, i: usize) {
        self.restart_with_env(i, &[]);
    }

    /// As [`MeshHarness::restart`], with `env` set for the agent (`NOTIFY_SOCKET`, say).
    pub fn restart_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        self.kill9(i);
        let m = &mut self.machines[i - 1];
        let env: Vec<(&str, &str)> = m
            .version
            .as_deref()
            .map(|v| ("STRATA_TEST_VERSION", v))
            .into_iter()
            .chain(env.iter().copied())
            .collect();
        m.agent = Some(TestAgent::start_with_env(
            &m.dir,
            &m.name,
            &m.listen(),
            &env,
        ));
        let addr = m.agent_addr();
        self.relays.set_target(i, Some(addr));
    }

    /// Machine `i`'s agent, renamed `name`, restarts by itself under it: waits until it
    /// says it started as `name`, and points its relay at its new port.
    pub fn renamed(&mut self, i: usize, name: &str) {
        let m = &mut self.machines[i - 1];
        let log = m.dir.join("agent.stderr");
        let started = format!("agent started machine={name}");
        let addr = wait_until(
            Duration::from_secs(30),
            &format!("{} restarts as {name}", m.name),
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let address = std::fs::read_to_string(m.dir.join("address")).unwrap_or_default();
                match (text.contains(&started), address.trim()) {
                    (true, a) if !a.is_empty() => Ok(a.to_owned()),
                    _ => Err(text.lines().last().unwrap_or_default().to_owned()),
                }
            },
        );
        m.name = name.to_owned();
        if let Some(agent) = m.agent.as_mut() {
            agent.addr = addr;
        }
        let addr = m.agent_addr();
        self.relays.set_target(i, Some(addr));
    }

    /// Machine `i` "upgraded": its agent restarted on the same state dir, saying it runs
    /// Strata `version` (a debug build's test-only `STRATA_TEST_VERSION`), as every later
    /// restart will.
    pub fn restart_as(&mut self, i: usize, version: &str) {
        self.machines[i - 1].version = Some(version.to_owned());
        self.restart(i);
    }
}

impl MeshHarness {
    /// The peers machine `i`'s own links are up to, as it reports them (none if it is
    /// down).
    pub fn links_up(&self, i: usize) -> Vec<String> {
        let out = self.strata(i, &["cluster", "connstatus", "--format", "json"]);
        crate::readings::links_up(&out.stdout, &self.machine(i).name)
    }

    /// Forms cluster `name` of every machine: created on machine 1, which gets the admin
    /// passphrase, and joined by the others through machine 1's relay. Panics, with the
    /// output, on a failure.
    pub fn form(&self, tmp: &Path, name: &str) {
        let pass = self.create(tmp, name);
        for i in 2..=self.len() {
            self.join(i, &pass);
        }
    }

    /// Creates cluster `name` on machine 1 and gives it the admin passphrase; returns the
    /// file that holds it (for [`MeshHarness::join`]).
    pub fn create(&self, tmp: &Path, name: &str) -> PathBuf {
        ok(&self.strata(1, &["cluster", "create", name]));
        let pass = tmp.join("passphrase");
        std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
        ok(&self.strata(
            1,
            &[
                "cluster",
                "passwd",
                "--passphrase-file",
                &pass.display().to_string(),
            ],
        ));
        pass
    }

    /// Machine `i` joins the cluster through machine 1's relay, pinning its fingerprint,
    /// with the admin passphrase in file `pass`. Panics, with the output, on a refusal.
    pub fn join(&self, i: usize, pass: &Path) {
        ok(&self.try_join(i, pass));
    }

    /// As [`MeshHarness::join`], returning what `cluster join` printed and how it exited.
    pub fn try_join(&self, i: usize, pass: &Path) -> Output {
        self.try_join_with(i, pass, &[])
    }

    /// As [`MeshHarness::try_join`], with `extra` arguments (`--format json`, say).
    pub fn try_join_with(&self, i: usize, pass: &Path, extra: &[&str]) -> Output {
        let member = self.machine(1);
        let (addr, fp) = (member.relay.to_string(), member.fingerprint());
        let pass = pass.display().to_string();
        let mut args = vec![
            "cluster",
            "join",
            &addr,
            "--fingerprint",
            &fp,
            "--yes",
            "--passphrase-file",
            &pass,
        ];
        args.extend_from_slice(extra);
        self.strata(i, &args)
    }
}

/// Polls `probe` every 20 ms until it returns `Ok`, and returns that; after `timeout`,
/// panics naming `what` and the last `Err` the probe gave (what it saw instead).
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) if Instant::now() >= deadline => {
                panic!("{what}: not within {timeout:?}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
