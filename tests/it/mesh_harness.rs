//! The mesh test harness itself: the relays cut, restore, isolate and count with plain
//! TCP echo servers; the launcher starts real agents behind them, reaches them directly
//! and through the relays, and kills and restarts them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::agent_support::stderr;
use crate::mesh_support::{MeshHarness, wait_until};
use crate::relay::{End, Fault, Relays, connect_from, machine_ip};

/// How long a read waits before a connection counts as black-holed. Bytes sent after a
/// cut can never cross it (the relay checks before every write), so this only bounds how
/// long a broken relay could hide.
const SILENCE: Duration = Duration::from_millis(300);

const PATIENCE: Duration = Duration::from_secs(10);

/// Echo servers on 127.0.0.11..=13 with a relay in front of each.
struct Echoes {
    relays: Relays,
    // Runs the echo servers; dropped last.
    _rt: tokio::runtime::Runtime,
}

impl Echoes {
    fn start() -> Echoes {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let relays = Relays::new(3);
        for i in 1..=3 {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind((machine_ip(i), 0)))
                .unwrap();
            let addr = listener.local_addr().unwrap();
            rt.spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        let (mut r, mut w) = s.split();
                        let _ = tokio::io::copy(&mut r, &mut w).await;
                    });
                }
            });
            relays.add(i, Some(addr));
        }
        Echoes { relays, _rt: rt }
    }

    /// A connection from machine `from` to machine `to`'s relay.
    fn connect(&self, from: usize, to: usize) -> TcpStream {
        self.connect_from_ip(machine_ip(from), to)
    }

    fn connect_from_ip(&self, ip: std::net::Ipv4Addr, to: usize) -> TcpStream {
        let s = connect_from(ip, self.relays.addr(to)).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s
    }
}

/// Sends `msg` and reads its echo.
fn echoes(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// Sends `msg` and sees nothing come back, the connection staying open.
fn held(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    s.set_read_timeout(Some(SILENCE)).unwrap();
    let mut buf = [0; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    s.set_read_timeout(Some(PATIENCE)).unwrap();
}

/// Whether the peer closed or reset the connection (a read gives EOF or an error).
fn closed(s: &mut TcpStream) -> Result<(), String> {
    // Fails only on a socket already reset, whose read then fails at once.
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0; 64];
    match s.read(&mut buf) {
        Ok(0) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err("still open, silent".into())
        }
        Err(_) => Ok(()),
        Ok(n) => Err(format!("{n} bytes")),
    }
}

#[test]
fn a_cut_black_holes_both_ways_and_restore_lets_new_connections_flow() {
    let e = Echoes::start();
    let mut two_one = e.connect(2, 1);
    let mut one_two = e.connect(1, 2);
    let mut three_one = e.connect(3, 1);
    echoes(&mut two_one, b"hello");
    echoes(&mut one_two, b"hello");
    echoes(&mut three_one, b"hello");

    e.relays.cut(1, 2);
    assert_eq!(e.relays.fault(2, 1), Some(Fault::BlackHole));
    held(&mut two_one, b"lost");
    held(&mut one_two, b"lost");
    echoes(&mut three_one, b"still here");
    // A new connection is accepted and black-holed too, never reaching the echo server.
    let mut fresh = e.connect(2, 1);
    held(&mut fresh, b"nothing");
    assert_eq!(e.relays.open_connections(1, 2), 3, "held, not closed");

    e.relays.restore(2, 1);
    assert_eq!(e.relays.fault(1, 2), None);
    let mut after = e.connect(2, 1);
    echoes(&mut after, b"back");
    echoes(&mut e.connect(1, 2), b"back");
    // What the cut held is closed, so its ends reconnect cleanly.
    for s in [&mut two_one, &mut one_two, &mut fresh] {
        wait_until(PATIENCE, "a held connection closed", || closed(s));
    }
    wait_until(PATIENCE, "only the new 1–2 connection open", || {
        let n = e.relays.open_connections(1, 2);
        (n == 1).then_some(()).ok_or(format!("{n} open"))
    });
    echoes(&mut three_one, b"unaffected");
}

#[test]
fn isolate_cuts_a_machine_from_every_other_and_heal_restores_all() {
    let e = Echoes::start();
    let mut one_three = e.connect(1, 3);
    let mut two_three = e.connect(2, 3);
    let mut three_two = e.connect(3, 2);
    let mut one_two = e.connect(1, 2);
    echoes(&mut one_three, b"a");

    e.relays.isolate(3);
    held(&mut one_three, b"b");
    held(&mut two_three, b"b");
    held(&mut three_two, b"b");
    echoes(&mut one_two, b"unaffected");
    assert_eq!(e.relays.fault(1, 2), None);

    e.relays.heal();
    for (from, to) in [(1, 3), (3, 1), (2, 3), (3, 2)] {
        echoes(&mut e.connect(from, to), b"healed");
    }
}

#[test]
fn reset_mode_closes_open_and_new_connections_at_once() {
    let e = Echoes::start();
    let mut open = e.connect(2, 1);
    echoes(&mut open, b"hello");
    e.relays.cut_with(1, 2, Fault::Reset);
    wait_until(PATIENCE, "the open connection reset", || closed(&mut open));
    // A new connection is accepted and reset: so quickly, at times, that the reset is
    // what completing the connect reports.
    match connect_from(machine_ip(1), e.relays.addr(2)) {
        Ok(mut fresh) => {
            let _ = fresh.write_all(b"x");
            wait_until(PATIENCE, "a new connection reset", || closed(&mut fresh));
        }
        Err(err) => assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}"),
    }
    echoes(&mut e.connect(3, 1), b"others flow");

    // A black hole turned into a reset closes what it held.
    e.relays.cut(1, 3);
    let mut held_one = e.connect(3, 1);
    held(&mut held_one, b"x");
    e.relays.cut_with(3, 1, Fault::Reset);
    wait_until(PATIENCE, "the held connection reset", || {
        closed(&mut held_one)
    });
    e.relays.heal();
    echoes(&mut e.connect(1, 2), b"healed");
}

#[test]
fn bytes_are_counted_per_direction_and_pair() {
    let e = Echoes::start();
    let mut two_one = e.connect(2, 1);
    let mut one_three = e.connect(1, 3);
    echoes(&mut two_one, &[7; 1000]);
    echoes(&mut one_three, &[7; 300]);
    echoes(&mut e.connect(1, 2), b"x");
    echoes(
        &mut e.connect_from_ip(std::net::Ipv4Addr::LOCALHOST, 2),
        &[1; 50],
    );
    let r = &e.relays;
    // The echo reaches the client just before the relay adds it up: poll.
    let want = |from: End, to: End, n: u64| {
        move || -> Result<(), String> {
            let got = r.bytes(from, to);
            (got == n)
                .then_some(())
                .ok_or(format!("{from:?}→{to:?}: {got}"))
        }
    };
    let (m1, m2, m3) = (End::Machine(1), End::Machine(2), End::Machine(3));
    wait_until(PATIENCE, "2→1", want(m2, m1, 1001));
    wait_until(PATIENCE, "1→2", want(m1, m2, 1001));
    wait_until(PATIENCE, "3→1", want(m3, m1, 300));
    wait_until(PATIENCE, "2→outside", want(m2, End::Outside, 50));
    assert_eq!(r.bytes(End::Outside, m2), 50);
    assert_eq!(r.bytes_between(1, 2), 2002);
    assert_eq!(r.bytes_between(3, 1), 600);
    assert_eq!(r.peer_bytes(), 2602);

    // Nothing is counted while cut.
    e.relays.cut(1, 2);
    held(&mut two_one, &[9; 500]);
    assert_eq!(r.bytes_between(1, 2), 2002);
}

#[test]
fn connections_from_outside_are_never_cut() {
    let e = Echoes::start();
    let mut outside = e.connect_from_ip(std::net::Ipv4Addr::LOCALHOST, 1);
    // 127.0.0.14 is not one of the 3 machines: outside too.
    let mut stranger = e.connect_from_ip(machine_ip(4), 1);
    e.relays.isolate(1);
    e.relays.cut_with(2, 3, Fault::Reset);
    echoes(&mut outside, b"still");
    echoes(&mut stranger, b"still");
    echoes(
        &mut e.connect_from_ip(std::net::Ipv4Addr::LOCALHOST, 2),
        b"new",
    );
    // Not attributed to any pair of machines.
    assert_eq!(e.relays.open_connections(1, 2), 0);
}

#[test]
fn wait_until_names_what_it_last_saw() {
    let mut n = 0;
    let got = wait_until(PATIENCE, "three", || {
        n += 1;
        if n == 3 { Ok(n) } else { Err(n.to_string()) }
    });
    assert_eq!(got, 3);
    let panic = std::panic::catch_unwind(|| {
        wait_until(Duration::from_millis(50), "never", || {
            Err::<(), _>("5 peers".into())
        })
    })
    .unwrap_err();
    let text = panic.downcast_ref::<String>().unwrap();
    assert!(
        text.starts_with("never: not within 50ms; last seen: 5 peers"),
        "{text}"
    );
}

#[test]
fn the_harness_starts_agents_behind_relays_and_restarts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = MeshHarness::start(tmp.path(), 3);
    for m in h.machines() {
        assert_eq!(m.name, format!("lab{}.example.com", m.index));
        let addr: SocketAddr = m.agent_addr();
        assert_eq!(addr.ip(), m.ip, "the agent listens on its machine's IP");
        assert_eq!(m.relay.ip(), m.ip);
        assert_ne!(addr, m.relay);
        let settings = std::fs::read_to_string(m.dir.join("agent.kdl")).unwrap();
        assert!(
            settings.contains(&format!("address \"{}\"", m.relay)),
            "{settings}"
        );
        assert!(m.host_public_key().starts_with("ssh-ed25519 "));
        wait_until(PATIENCE, "`agent started` logged", || {
            let log = m.log();
            log.contains("agent started").then_some(()).ok_or(log)
        });

        let out = h.strata(m.index, &["log"]);
        assert!(out.status.success(), "{}", stderr(&out));
        // A real SSH session through the relay, pinned by the fingerprint.
        let out = h.strata_via_relay(m.index, &["log"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let to = End::Machine(m.index);
        assert!(h.relays.bytes(End::Outside, to) > 0);
        assert!(h.relays.bytes(to, End::Outside) > 0);
    }
    // Isolating a machine leaves the test's own connections alone.
    h.relays.isolate(1);
    let out = h.strata_via_relay(1, &["log"]);
    assert!(out.status.success(), "{}", stderr(&out));
    h.relays.heal();

    let (fingerprint, pid) = (h.machine(2).fingerprint(), h.machine(2).pid());
    h.kill9(2);
    assert!(!h.machine(2).is_running());
    let out = h.strata_via_relay(2, &["log"]);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    h.restart(2);
    assert_ne!(h.machine(2).pid(), pid);
    assert_eq!(
        h.machine(2).fingerprint(),
        fingerprint,
        "same state dir, same key"
    );
    // It writes `address` just before it logs that it started.
    wait_until(PATIENCE, "two starts in lab2's log", || {
        let n = h.machine(2).log().matches("agent started").count();
        (n == 2).then_some(()).ok_or(format!("{n} starts"))
    });
    for out in [h.strata(2, &["log"]), h.strata_via_relay(2, &["log"])] {
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(h.terminate(3).success(), "SIGTERM is a clean stop");
}
