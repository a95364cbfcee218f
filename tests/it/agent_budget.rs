//! The agent's resource budget, against a real agent on loopback: a connection that never
//! logs in is closed after the login timeout, one address cannot hold more than its
//! share, and while one address floods the agent everyone else is still served — the
//! on-box CLI too, which comes through the state dir's socket, outside the budget, and
//! which only the state dir's owner and root may use.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::agent_support::{
    TestAgent, apply_main, created, git_repo, log_with_passphrase, p, sd, stderr, stdout, strata,
};
use crate::host::status_kib;

/// An agent with a short login timeout and a small per-address share.
fn budget_agent(dir: &std::path::Path) -> TestAgent {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\nlogin-timeout-ms 500\nmax-connections-per-address 4\nmax-unauthenticated 64\n",
    )
    .unwrap();
    TestAgent::start(dir, "lab1")
}

/// A TCP connection to the agent from the loopback address `from` (127.0.0.x): every
/// 127/8 address is this machine's, so one test can be several clients.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket.connect(to).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the peer closes; returns what it sent and how long that took.
fn read_to_close(mut stream: TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    (out, started.elapsed())
}

#[test]
fn a_connection_that_never_logs_in_is_closed_after_the_login_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = budget_agent(&tmp.path().join("agent"));
    let addr: SocketAddr = agent.addr.parse().unwrap();
    let (banner, took) = read_to_close(connect_from("127.0.0.3", addr));
    assert!(banner.starts_with(b"SSH-2.0-"), "{banner:?}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(15),
        "closed after {took:?}"
    );
    // The agent says why (its log line may land a moment after the socket closed).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.log().contains("no login within") {
        assert!(Instant::now() < deadline, "{}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_address_cannot_hold_more_than_its_share() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = budget_agent(&tmp.path().join("agent"));
    let addr: SocketAddr = agent.addr.parse().unwrap();
    // Four idle connections from one address take its share.
    let held: Vec<TcpStream> = (0..4).map(|_| connect_from("127.0.0.2", addr)).collect();
    for s in &held {
        let mut buf = [0u8; 8];
        (&*s).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"SSH-2.0-");
    }
    // A fifth from the same address is closed at once, before any SSH is spoken...
    let (sent, _) = read_to_close(connect_from("127.0.0.2", addr));
    assert!(sent.is_empty(), "{sent:?}");
    // ...while everyone else is served.
    let out = strata(&["log", "--state-dir", &sd(&agent)]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The idle ones are closed after the login timeout; the address is served again.
    for s in held {
        let (_, took) = read_to_close(s);
        assert!(took < Duration::from_secs(15));
    }
    let mut again = connect_from("127.0.0.2", addr);
    let mut buf = [0u8; 8];
    again.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"SSH-2.0-");
}

/// Parallel wrong passphrases: each argon2 check takes 19 MiB.
const GUESSES: usize = 12;

#[test]
fn parallel_passphrase_guesses_keep_the_agent_s_memory_flat() {
    let tmp = tempfile::tempdir().unwrap();
    let hash = strata::cluster::users::hash_passphrase("correct horse battery").unwrap();
    let cluster = format!(
        "cluster \"americas\" {{\n    users {{\n        user \"ada\" role=\"operator\" passphrase-hash=\"{hash}\"\n    }}\n}}\ngroup \"Main_Group\"\nmachine \"lab1.example.com\"\n"
    );
    let repo = tmp.path().join("repo");
    git_repo(&repo, &[("cluster.kdl", &cluster)], "users");
    let dir = tmp.path().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1.example.com\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 1\n",
    )
    .unwrap();
    let agent = created(&dir);
    apply_main(&p(&repo), &sd(&agent));
    let Some(before) = status_kib(agent.child.id(), "VmHWM") else {
        eprintln!("skipping: no /proc on this machine");
        return;
    };
    let guesses: Vec<_> = (0..GUESSES)
        .map(|_| {
            log_with_passphrase(&agent, "ada", "wrong")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for g in guesses {
        let out = g.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
    let after = status_kib(agent.child.id(), "VmHWM").unwrap();
    // One check at a time, on one thread: measured, the peak grows by about 80 MiB (one
    // hash's 19 MiB and about 5 MiB per open SSH session); twelve checks at once on
    // blocking threads took it up by 137 MiB, and twelve hashes alone are 228 MiB.
    assert!(
        after < before + 110 * 1024,
        "peak RSS went from {before} KiB to {after} KiB"
    );
    // The right passphrase still logs in (after the delay the guesses earned).
    let out = log_with_passphrase(&agent, "ada", "correct horse battery")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn idle_sockets_from_127_0_0_1_do_not_lock_out_the_on_box_cli() {
    let tmp = tempfile::tempdir().unwrap();
    // The default budget: 32 connections per address, 10 s to log in.
    let agent = TestAgent::start(&tmp.path().join("agent"), "lab1");
    let addr: SocketAddr = agent.addr.parse().unwrap();
    let held: Vec<TcpStream> = (0..40).map(|_| connect_from("127.0.0.1", addr)).collect();
    // 127.0.0.1's share is taken: a further connection from it is closed at once.
    let (sent, _) = read_to_close(connect_from("127.0.0.1", addr));
    assert!(sent.is_empty(), "{sent:?}");
    for args in [&["log"][..], &["status"], &["cluster", "list"]] {
        let mut all = args.to_vec();
        let sd = sd(&agent);
        all.extend(["--state-dir", &sd]);
        let out = strata(&all);
        // Answered (`status` exits 1 on a cluster with nothing applied yet), not
        // turned away (69).
        assert!(
            out.status.code() != Some(69) && !stdout(&out).is_empty(),
            "{all:?}: {:?} {}",
            out.status.code(),
            stderr(&out)
        );
    }
    assert_eq!(crate::agent_support::change_set_ids(&sd(&agent)).len(), 0);
    drop(held);
}

#[cfg(unix)]
#[test]
fn only_the_state_dir_s_owner_and_root_may_use_its_socket() {
    use std::os::unix::fs::PermissionsExt;
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: only root can run the CLI as another user here");
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        eprintln!("skipped: no setpriv to run the CLI as another user");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let agent = TestAgent::start(&dir, "lab1");
    let socket = dir.join("agent.sock");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&socket), 0o600);
    // Opened up by hand, so that another user reaches the socket at all: its peer
    // credentials still keep them out.
    let open = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    open(tmp.path(), 0o711);
    open(&dir, 0o711);
    open(&socket, 0o666);
    let key = tmp.path().join("key");
    std::fs::copy(dir.join("local_key"), &key).unwrap();
    std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
    let log_as = |who: &[&str]| {
        let mut cmd = std::process::Command::new(&setpriv);
        cmd.args(who)
            .arg(env!("CARGO_BIN_EXE_strata"))
            .args([
                "log",
                "--state-dir",
                &sd(&agent),
                "--fingerprint",
                &agent.fingerprint(),
                "--identity",
                &p(&key),
            ])
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        cmd.output().unwrap()
    };
    let nobody = log_as(&["--reuid=65534", "--regid=65534", "--clear-groups"]);
    assert_eq!(nobody.status.code(), Some(69), "{}", stderr(&nobody));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.log().contains("local connection refused") {
        assert!(Instant::now() < deadline, "{}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(agent.log().contains("uid=Some(65534)"), "{}", agent.log());
    // Root, the same way in: served.
    let root = log_as(&["--reuid=0"]);
    assert!(root.status.success(), "{}", stderr(&root));
}

/// The path of `program` on `PATH`.
fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .ok_or(())
}
