//! The mesh's peers against a real agent, in this process: the SSH client through
//! `agent::run(listener, shutdown, agent)` on a loopback port 0 (host-key pinning, login,
//! hello, requests, and a link cut before the answer), and the in-memory twin through the
//! same agent without any socket.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::keys::{Algorithm, PrivateKey};
use strata::agent::{Agent, run};
use strata::cluster::Authed;
use strata::cluster::users::Role;
use strata::protocol::{
    Client, ClientOptions, HostKeyPin, Link, Login, MemoryPeer, Peer, PeerError, Request, Response,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// An agent serving SSH on a loopback port; stopped when dropped.
struct Served {
    agent: Arc<Agent>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

fn open_agent(dir: &Path) -> Arc<Agent> {
    // Short refusal delays keep the test quick.
    std::fs::write(
        dir.join("agent.kdl"),
        "machine \"lab1\"\nlisten \"127.0.0.1:0\"\nauth-delay-ms 20\n",
    )
    .unwrap();
    Agent::open(dir, Some("lab1"), None).unwrap()
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let agent = open_agent(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(run(
        listener,
        async {
            let _ = stopped.await;
        },
        agent.clone(),
    ));
    Served {
        agent,
        addr,
        _stop: stop,
        _dir: dir,
    }
}

impl Served {
    /// Options for the state dir's administrator, pinned to the agent's own key.
    fn options(&self, addr: SocketAddr) -> ClientOptions {
        let key = russh::keys::load_secret_key(self.agent.state.layout.local_key(), None).unwrap();
        ClientOptions::new(
            addr.ip().to_string(),
            addr.port(),
            HostKeyPin::Key(self.agent.state.host_key.public_key().clone()),
            "root",
            Login::Key(Box::new(key)),
        )
    }
}

/// Code written against the trait, as replication will be.
async fn live_count(peer: &mut impl Peer) -> Result<usize, PeerError> {
    match peer.request(Request::Live).await? {
        Response::Live { entries, .. } => Ok(entries.len()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssh_client_logs_in_says_hello_and_gets_answers() {
    let served = serve().await;
    let mut client = Client::connect(served.options(served.addr)).await.unwrap();
    assert_eq!(client.info().machine, "lab1");
    assert_eq!(client.info().role, "administrator");
    assert_eq!(client.info().version, env!("CARGO_PKG_VERSION"));
    let before = live_count(&mut client).await.unwrap();
    let created = client
        .request(Request::ClusterCreate {
            name: "americas".into(),
        })
        .await
        .unwrap();
    assert!(matches!(created, Response::Applied { .. }), "{created:?}");
    assert!(live_count(&mut client).await.unwrap() > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_key_an_unknown_login_and_a_closed_port_are_told_apart() {
    let served = serve().await;

    let mut options = served.options(served.addr);
    options.pin =
        HostKeyPin::Fingerprint("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    let err = Client::connect(options).await.err().unwrap();
    assert!(matches!(err, PeerError::HostKey { .. }), "{err}");
    assert!(
        err.to_string().contains("not the pinned SHA256:AAAA"),
        "{err}"
    );

    let mut options = served.options(served.addr);
    options.login = Login::Key(Box::new(
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap(),
    ));
    let err = Client::connect(options).await.err().unwrap();
    assert!(
        matches!(err, PeerError::Login { ref user, .. } if user == "root"),
        "{err}"
    );

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap();
    drop(closed);
    let err = Client::connect(served.options(port)).await.err().unwrap();
    assert!(matches!(err, PeerError::Connect { .. }), "{err}");
    assert!(!err.outcome_unknown());
}

/// A TCP relay to `to` for one connection. Once `armed`, the next bytes from the agent
/// (the answer to the request in flight) are dropped and the link is cut — an agent
/// that acted on a request and went away before its answer arrived.
async fn relay(to: SocketAddr, armed: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let agent = TcpStream::connect(to).await.unwrap();
        let (mut client_read, mut client_write) = client.into_split();
        let (mut agent_read, mut agent_write) = agent.into_split();
        let upstream = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut agent_write).await;
        });
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match agent_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if armed.load(Ordering::SeqCst) || client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        // Dropping both directions cuts the link.
        upstream.abort();
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_before_the_answer_leaves_the_outcome_unknown() {
    let served = serve().await;
    let armed = Arc::new(AtomicBool::new(false));
    let via = relay(served.addr, armed.clone()).await;
    let mut client = Client::connect(served.options(via)).await.unwrap();
    armed.store(true, Ordering::SeqCst);
    let err = client
        .request(Request::ClusterCreate {
            name: "americas".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, PeerError::Lost { .. }), "{err}");
    assert!(err.outcome_unknown());
    assert!(err.to_string().contains("unknown"), "{err}");
    // It did take effect: the agent logged the change set.
    let mut direct = Client::connect(served.options(served.addr)).await.unwrap();
    match direct.request(Request::Log).await.unwrap() {
        Response::Log { change_sets } => assert_eq!(change_sets.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_twin_answers_as_the_agent_does_without_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let agent = open_agent(dir.path());
    let admin = Authed::user("root", Role::Administrator);
    let mut peer = MemoryPeer::new("lab1", agent.clone(), admin);
    match peer
        .request(Request::Hello {
            protocol: strata::protocol::PROTOCOL,
            version: "test".into(),
        })
        .await
        .unwrap()
    {
        Response::Hello { machine, role, .. } => {
            assert_eq!(machine, "lab1");
            assert_eq!(role, "administrator");
        }
        other => panic!("{other:?}"),
    }
    let before = live_count(&mut peer).await.unwrap();
    peer.link().set(Link::LosesAnswers);
    let err = peer
        .request(Request::ClusterCreate {
            name: "americas".into(),
        })
        .await
        .unwrap_err();
    assert!(err.outcome_unknown(), "{err}");
    peer.link().set(Link::Up);
    assert!(
        live_count(&mut peer).await.unwrap() > before,
        "it took effect"
    );

    // A read-only caller is denied, as over SSH.
    let reader = Authed::user("rob", Role::ReadOnly);
    let mut peer = MemoryPeer::new("lab1", agent, reader);
    let denied = peer
        .request(Request::ClusterCreate { name: "x".into() })
        .await
        .unwrap();
    assert!(matches!(denied, Response::Denied { .. }), "{denied:?}");
}
