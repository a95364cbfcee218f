//! One agent running the bundled example cluster, for the benches that load a single
//! agent (`benches/flood.rs`, `benches/idle.rs`): a git repo made from
//! `examples/americas`, an agent on 127.0.0.1 (port picked by the system) with extra
//! `agent.kdl` lines, `cluster create americas` and `apply --ref main`; and the open-file
//! limit raised for benches that hold thousands of sockets. Not part of the library:
//! included with `#[path]` beside `git.rs` and `host.rs`.

#![allow(dead_code)] // each bench uses some of it

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{git, host};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_strata")
}

/// Runs `strata ARGS`.
pub fn strata(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Raises this process's open-file limit to the hard one (the floods hold thousands of
/// sockets).
pub fn raise_open_files() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
}

/// A TCP connection from the loopback address `from`.
pub fn connect_from(rt: &tokio::runtime::Runtime, from: &str, to: SocketAddr) -> Option<TcpStream> {
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(format!("{from}:0").parse().ok()?).ok()?;
        let stream = socket.connect(to).await.ok()?;
        stream.into_std().ok()
    })
}

/// The agent, stopped when dropped.
pub struct ExampleAgent {
    /// Holds the repo and the state dir.
    pub tmp: tempfile::TempDir,
    /// The config repo (a git repository of `examples/americas`, commit on `main`).
    pub repo: PathBuf,
    /// The agent's state dir.
    pub dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
    pub child: Child,
}

impl ExampleAgent {
    /// Starts the agent with `extra` lines in its `agent.kdl`, creates the cluster and
    /// applies the example at `main`.
    pub fn start(extra: &str) -> ExampleAgent {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        host::copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/americas"),
            &repo,
        );
        git::commit_all(&repo, ("Bench", "bench@example.com"), "americas").unwrap();
        let dir = tmp.path().join("agent");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("agent.kdl"),
            format!("machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\n{extra}"),
        )
        .unwrap();
        let child = Command::new(bin())
            .args(["agent", "--state-dir"])
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.join("address").exists() {
            assert!(Instant::now() < deadline, "agent did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        let addr: SocketAddr = std::fs::read_to_string(dir.join("address"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let agent = ExampleAgent {
            tmp,
            repo,
            dir,
            addr,
            child,
        };
        let sd = agent.state_dir();
        let out = strata(&["cluster", "create", "americas", "--state-dir", &sd]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let repo = agent.repo.display().to_string();
        let out = strata(&[
            "apply",
            "--yes",
            "--ref",
            "main",
            "--repo",
            &repo,
            "--state-dir",
            &sd,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        agent
    }

    /// The state dir as an argument.
    pub fn state_dir(&self) -> String {
        self.dir.display().to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ExampleAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
