//! Fault-injecting TCP relays for multi-machine tests: one relay in front of each
//! machine's listener, all sharing one set of cut links, so a test can cut and restore
//! the link between two machines, or isolate one, for real — bytes stop flowing.
//!
//! Machine `i` (1-based) lives on `127.0.0.(10+i)` ([`machine_ip`]). Its relay listens on
//! that IP and forwards every connection to the machine's real listener (its *target*).
//! The relay tells which machine a connection comes from by its source IP: `127.0.0.(10+j)`
//! is machine `j` (peers bind their outgoing connections to their own IP; see
//! [`connect_from`]); anything else — the test's own CLI runs from `127.0.0.1` — is
//! *outside* and never cut. The relay's own connection to the target is bound to the same
//! source IP, so the target sees who really connects (its per-address limits count right).
//!
//! Faults, per unordered pair of machines:
//! - [`Fault::BlackHole`] (what [`Relays::cut`] uses): open connections between the two
//!   stop moving bytes in both directions while both sockets stay open — no FIN, no RST,
//!   as a pulled cable looks; the endpoints must notice by their own timeouts. New
//!   connections are accepted and black-holed too, never reaching the target.
//! - [`Fault::Reset`]: open connections are closed at once with a RST, and new ones are
//!   accepted and reset: a fast, loud failure.
//!
//! [`Relays::restore`] lets new connections flow again and closes (RST) every connection
//! the fault held: a black-holed connection has lost bytes in an unknown place, so it is
//! never resumed; its endpoints see it fail and reconnect cleanly.
//!
//! The relays run on their own tokio runtime (one worker thread), so sync tests use them
//! with plain calls; dropping [`Relays`] stops them and closes every socket. Not part of
//! the library: the integration tests include this file with `#[path]`.

// Each crate that includes this file uses only part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// The loopback IP of machine `i` (1-based): `127.0.0.(10+i)`. Linux routes all of
/// `127.0.0.0/8` to the loopback interface, so these need no setup.
pub fn machine_ip(i: usize) -> Ipv4Addr {
    assert!(i >= 1, "machines are numbered from 1");
    let last = u8::try_from(10 + i).expect("at most 245 machines");
    Ipv4Addr::new(127, 0, 0, last)
}

/// Who is at one end of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum End {
    /// Machine `i` (1-based).
    Machine(usize),
    /// Anything that is not one of the machines (the test itself): never cut.
    Outside,
}

/// How a cut link fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes stop; sockets stay open (a pulled cable).
    BlackHole,
    /// Connections are reset at once, new ones too (a refusing firewall).
    Reset,
}

/// What one relayed connection does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flow,
    Hold,
    Reset,
}

/// One open relayed connection, as the shared state sees it.
struct Conn {
    /// The unordered machine pair, `None` for connections from outside or a machine to
    /// itself (never cut).
    pair: Option<(usize, usize)>,
    mode: watch::Sender<Mode>,
}

#[derive(Default)]
struct State {
    /// Cut pairs `(a, b)` with `a < b`.
    cuts: BTreeMap<(usize, usize), Fault>,
    /// Each relay's target, by machine; `None` while the machine is down.
    targets: HashMap<usize, Option<SocketAddr>>,
    /// Open connections by id.
    conns: HashMap<u64, Conn>,
    next_id: u64,
    /// Bytes forwarded, by (from, to).
    bytes: BTreeMap<(End, End), u64>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// The relays of a set of machines and the links between them; see the module docs.
pub struct Relays {
    machines: usize,
    state: Arc<Mutex<State>>,
    addrs: Mutex<BTreeMap<usize, SocketAddr>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relays {
    /// Relays for machines `1..=machines`; none is listening until [`Relays::add`].
    pub fn new(machines: usize) -> Relays {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("relay")
            .enable_all()
            .build()
            .expect("start the relays' runtime");
        Relays {
            machines,
            state: Arc::default(),
            addrs: Mutex::default(),
            runtime: Some(runtime),
        }
    }

    /// The number of machines.
    pub fn machines(&self) -> usize {
        self.machines
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().unwrap()
    }

    /// Starts machine `i`'s relay on `127.0.0.(10+i)` at a free port, forwarding to
    /// `target` (or refusing connections until [`Relays::set_target`]); returns its address.
    pub fn add(&self, i: usize, target: Option<SocketAddr>) -> SocketAddr {
        assert!((1..=self.machines).contains(&i), "no machine {i}");
        let std = std::net::TcpListener::bind((machine_ip(i), 0)).expect("bind a relay");
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap();
        let listener = {
            let _in_runtime = self.runtime().enter();
            TcpListener::from_std(std).unwrap()
        };
        self.state().targets.insert(i, target);
        let old = self.addrs.lock().unwrap().insert(i, addr);
        assert!(old.is_none(), "machine {i} already has a relay");
        self.runtime()
            .spawn(accept_loop(listener, i, self.machines, self.state.clone()));
        addr
    }

    /// Machine `i`'s relay address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.addrs.lock().unwrap()[&i]
    }

    /// Where machine `i`'s relay forwards new connections (`None`: it closes them, as a
    /// machine that is down refuses them). Open connections are left alone.
    pub fn set_target(&self, i: usize, target: Option<SocketAddr>) {
        self.state().targets.insert(i, target);
    }

    /// Cuts the link between machines `a` and `b` by black-holing it; see [`Fault`].
    pub fn cut(&self, a: usize, b: usize) {
        self.cut_with(a, b, Fault::BlackHole);
    }

    /// Cuts the link between machines `a` and `b` with `fault`, in both directions, for
    /// open connections and new ones, until [`Relays::restore`]. Cutting a cut link again
    /// changes its fault for new connections; a held one is then reset if `fault` is
    /// [`Fault::Reset`].
    pub fn cut_with(&self, a: usize, b: usize, fault: Fault) {
        assert!(a != b, "a machine's link to itself cannot be cut");
        assert!(
            (1..=self.machines).contains(&a) && (1..=self.machines).contains(&b),
            "no machine {a} or {b}"
        );
        let p = pair(a, b);
        let mut state = self.state();
        state.cuts.insert(p, fault);
        let mode = match fault {
            Fault::BlackHole => Mode::Hold,
            Fault::Reset => Mode::Reset,
        };
        for conn in state.conns.values().filter(|c| c.pair == Some(p)) {
            // A held connection is never resumed: from Hold only to Reset.
            conn.mode.send_if_modified(|m| {
                let change = *m != Mode::Reset && (*m == Mode::Flow || mode == Mode::Reset);
                if change {
                    *m = mode;
                }
                change
            });
        }
    }

    /// Restores the link between `a` and `b`: new connections flow again; connections
    /// the cut held are reset, so their endpoints reconnect cleanly.
    pub fn restore(&self, a: usize, b: usize) {
        let p = pair(a, b);
        let mut state = self.state();
        state.cuts.remove(&p);
        for conn in state.conns.values().filter(|c| c.pair == Some(p)) {
            conn.mode.send_if_modified(|m| {
                let held = *m == Mode::Hold;
                if held {
                    *m = Mode::Reset;
                }
                held
            });
        }
    }

    /// Cuts machine `a` from every other machine (black hole).
    pub fn isolate(&self, a: usize) {
        self.isolate_with(a, Fault::BlackHole);
    }

    /// Cuts machine `a` from every other machine with `fault`.
    pub fn isolate_with(&self, a: usize, fault: Fault) {
        for b in (1..=self.machines).filter(|b| *b != a) {
            self.cut_with(a, b, fault);
        }
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        let cut: Vec<_> = self.state().cuts.keys().copied().collect();
        for (a, b) in cut {
            self.restore(a, b);
        }
    }

    /// How the link between `a` and `b` is cut, if it is.
    pub fn fault(&self, a: usize, b: usize) -> Option<Fault> {
        self.state().cuts.get(&pair(a, b)).copied()
    }

    /// Relayed connections open now between `a` and `b` (held ones included).
    pub fn open_connections(&self, a: usize, b: usize) -> usize {
        let p = pair(a, b);
        self.state()
            .conns
            .values()
            .filter(|c| c.pair == Some(p))
            .count()
    }

    /// Bytes forwarded from `from` to `to` so far (payload on the wire, both relays).
    pub fn bytes(&self, from: End, to: End) -> u64 {
        self.state().bytes.get(&(from, to)).copied().unwrap_or(0)
    }

    /// Bytes forwarded between machines `a` and `b`, both directions.
    pub fn bytes_between(&self, a: usize, b: usize) -> u64 {
        let (a, b) = (End::Machine(a), End::Machine(b));
        self.bytes(a, b) + self.bytes(b, a)
    }

    /// Bytes forwarded between any two machines (what the mesh put on the wire; the
    /// test's own connections from outside do not count).
    pub fn peer_bytes(&self) -> u64 {
        self.state()
            .bytes
            .iter()
            .filter(|((f, t), _)| *f != End::Outside && *t != End::Outside)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every (from, to) byte count so far.
    pub fn byte_counts(&self) -> BTreeMap<(End, End), u64> {
        self.state().bytes.clone()
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        // Not `drop(runtime)`: that blocks and panics inside an async test.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Which machine a source address is, among `machines`.
fn end_of(addr: SocketAddr, machines: usize) -> End {
    match addr.ip() {
        IpAddr::V4(ip) if (1..=machines).any(|i| machine_ip(i) == ip) => {
            End::Machine(usize::from(ip.octets()[3]) - 10)
        }
        _ => End::Outside,
    }
}

async fn accept_loop(listener: TcpListener, me: usize, machines: usize, state: Arc<Mutex<State>>) {
    loop {
        let Ok((client, from)) = listener.accept().await else {
            // Out of file descriptors, say: try again soon rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = client.set_nodelay(true);
        let peer = end_of(from, machines);
        let p = match peer {
            End::Machine(j) if j != me => Some(pair(me, j)),
            _ => None,
        };
        // Registered under the lock that `cut` takes, so no cut misses a new connection.
        let (id, mode, target) = {
            let mut s = state.lock().unwrap();
            let mode = match p.and_then(|p| s.cuts.get(&p)) {
                None => Mode::Flow,
                Some(Fault::BlackHole) => Mode::Hold,
                Some(Fault::Reset) => Mode::Reset,
            };
            let (tx, rx) = watch::channel(mode);
            let id = s.next_id;
            s.next_id += 1;
            s.conns.insert(id, Conn { pair: p, mode: tx });
            (id, rx, s.targets.get(&me).copied().flatten())
        };
        let ends = (peer, End::Machine(me));
        let state = state.clone();
        tokio::spawn(async move {
            relay(client, from.ip(), target, mode, ends, &state).await;
            state.lock().unwrap().conns.remove(&id);
        });
    }
}

/// Relays one accepted connection until either side closes or a fault ends it.
async fn relay(
    mut client: TcpStream,
    source: IpAddr,
    target: Option<SocketAddr>,
    mut mode: watch::Receiver<Mode>,
    (from, to): (End, End),
    state: &Mutex<State>,
) {
    // A connection held from the start never reaches the target: across a cut link the
    // SYN would not have either.
    if *mode.borrow() == Mode::Hold {
        let _ = mode.wait_for(|m| *m == Mode::Reset).await;
    }
    if *mode.borrow() == Mode::Reset {
        let _ = client.set_zero_linger();
        return;
    }
    let Some(target) = target else {
        return;
    };
    let mut upstream = tokio::select! {
        biased;
        _ = mode.wait_for(|m| *m == Mode::Reset) => {
            let _ = client.set_zero_linger();
            return;
        }
        s = connect(source, target) => match s {
            Ok(s) => s,
            Err(_) => return,
        },
    };
    let _ = upstream.set_nodelay(true);
    {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let both = futures::future::join(
            copy(cr, uw, mode.clone(), (from, to), state),
            copy(ur, cw, mode.clone(), (to, from), state),
        );
        // Each direction pauses itself on Hold (checked before every read and write);
        // only a Reset needs to end both at once, here.
        tokio::select! {
            biased;
            _ = mode.wait_for(|m| *m == Mode::Reset) => {}
            _ = both => return,
        }
    }
    let _ = client.set_zero_linger();
    let _ = upstream.set_zero_linger();
}

/// A connection to `target` from `source` (port chosen by the system), or from anywhere
/// if that address cannot be bound.
async fn connect(source: IpAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if socket.bind(SocketAddr::new(source, 0)).is_err() {
        return TcpStream::connect(target).await;
    }
    socket.connect(target).await
}

/// Copies one direction until EOF (then half-closes the writer) or an error, counting
/// what it forwards; waits while the connection is held, before every read and write, so
/// bytes sent after a cut never cross it.
async fn copy(
    mut r: tokio::net::tcp::ReadHalf<'_>,
    mut w: tokio::net::tcp::WriteHalf<'_>,
    mut mode: watch::Receiver<Mode>,
    ends: (End, End),
    state: &Mutex<State>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if mode.wait_for(|m| *m == Mode::Flow).await.is_err() {
            return;
        }
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = w.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if mode.wait_for(|m| *m == Mode::Flow).await.is_err() {
            return;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
        *state.lock().unwrap().bytes.entry(ends).or_default() += n as u64;
    }
}

/// A blocking TCP connection to `to` from `source` (any port): how a test plays machine
/// `j` by connecting from [`machine_ip`]`(j)`.
pub fn connect_from(source: Ipv4Addr, to: SocketAddr) -> io::Result<std::net::TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let stream = rt.block_on(async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        socket.connect(to).await?.into_std()
    })?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}
