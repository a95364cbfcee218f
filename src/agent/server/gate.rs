//! Admission: how many connections one address may hold and how many may wait to log in,
//! so that a flood (idle sockets, slowloris, guessing) leaves room for everyone else.
//! Pure bookkeeping; a [`Ticket`] gives its place back when dropped.
//!
//! When the waiting room is full, a newcomer from an address that waits less than the
//! busiest one takes the place of that address's oldest waiting connection, which is told
//! to go ([`Ticket::evicted`]). So however many addresses flood, an address with fewer
//! waiting connections than the flooders — a legitimate client — always gets in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::agent_kdl::Limits;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Its address already holds its share.
    Address,
    /// The waiting room is full and its address waits as much as any other.
    Unauthenticated,
}

/// One address's connections: how many are open, and those waiting to log in, oldest
/// first.
#[derive(Debug, Default)]
struct Address {
    open: usize,
    waiting: VecDeque<(u64, CancellationToken)>,
}

#[derive(Debug, Default)]
struct Counts {
    addresses: HashMap<IpAddr, Address>,
    waiting: usize,
    next: u64,
}

/// The admission rules and current counts.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// One admitted connection's place: counted against its address, and in the waiting room
/// until [`Ticket::logged_in`].
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
    id: u64,
    evicted: CancellationToken,
}

impl Counts {
    /// Takes connection `id` of `ip` out of the waiting room, if it is there.
    fn stop_waiting(&mut self, ip: IpAddr, id: u64) {
        if let Some(a) = self.addresses.get_mut(&ip)
            && let Some(i) = a.waiting.iter().position(|(w, _)| *w == id)
        {
            a.waiting.remove(i);
            self.waiting -= 1;
        }
    }
}

impl Gate {
    /// A gate with these limits.
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip` (perhaps evicting a waiting one of a busier
    /// address), or says why not.
    pub fn admit(self: &Arc<Gate>, ip: IpAddr) -> Result<Ticket, Full> {
        let mut c = self.counts();
        let (open, mine) = c
            .addresses
            .get(&ip)
            .map_or((0, 0), |a| (a.open, a.waiting.len()));
        if open >= self.limits.max_per_address {
            return Err(Full::Address);
        }
        if c.waiting >= self.limits.max_unauthenticated {
            let busiest = c
                .addresses
                .iter_mut()
                .max_by_key(|(_, a)| a.waiting.len())
                .filter(|(_, a)| a.waiting.len() > mine + 1);
            let Some((_, a)) = busiest else {
                return Err(Full::Unauthenticated);
            };
            if let Some((_, token)) = a.waiting.pop_front() {
                token.cancel();
                c.waiting -= 1;
            }
        }
        c.next += 1;
        let id = c.next;
        let evicted = CancellationToken::new();
        let a = c.addresses.entry(ip).or_default();
        a.open += 1;
        a.waiting.push_back((id, evicted.clone()));
        c.waiting += 1;
        Ok(Ticket {
            gate: Arc::clone(self),
            ip,
            id,
            evicted,
        })
    }

    /// (connections from `ip`, connections waiting to log in), for tests and logs.
    pub fn load(&self, ip: IpAddr) -> (usize, usize) {
        let c = self.counts();
        (c.addresses.get(&ip).map_or(0, |a| a.open), c.waiting)
    }
}

impl Ticket {
    /// The connection logged in: it leaves the waiting room (and can no longer be
    /// evicted).
    pub fn logged_in(&mut self) {
        self.gate.counts().stop_waiting(self.ip, self.id);
    }

    /// Completes when a newcomer took this connection's place in the waiting room.
    pub async fn evicted(&self) {
        self.evicted.cancelled().await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        c.stop_waiting(self.ip, self.id);
        if let Some(a) = c.addresses.get_mut(&self.ip) {
            a.open -= 1;
            if a.open == 0 {
                c.addresses.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn one_address_cannot_take_every_place_and_places_come_back() {
        let gate = Gate::new(Limits {
            max_unauthenticated: 3,
            max_per_address: 2,
            ..Limits::default()
        });
        let a1 = gate.admit(ip(1)).unwrap();
        let mut a2 = gate.admit(ip(1)).unwrap();
        assert_eq!(gate.admit(ip(1)).unwrap_err(), Full::Address);
        let b1 = gate.admit(ip(2)).unwrap();
        let c1 = gate.admit(ip(3)).unwrap();
        // Full, and every address waits as much as a newcomer would: refused.
        assert_eq!(gate.admit(ip(4)).unwrap_err(), Full::Unauthenticated);
        // Logging in frees a waiting place but not the address's share.
        a2.logged_in();
        assert_eq!(gate.load(ip(1)), (2, 2));
        let d1 = gate.admit(ip(4)).unwrap();
        assert_eq!(gate.admit(ip(1)).unwrap_err(), Full::Address);
        drop((a1, a2, b1, c1, d1));
        assert_eq!(gate.load(ip(1)), (0, 0));
        assert!(gate.admit(ip(1)).is_ok());
    }

    #[tokio::test]
    async fn a_newcomer_takes_the_place_of_the_busiest_address_s_oldest() {
        let gate = Gate::new(Limits {
            max_unauthenticated: 4,
            max_per_address: 10,
            ..Limits::default()
        });
        // A flood fills the waiting room from two addresses.
        let flood: Vec<Ticket> = [1, 1, 1, 2]
            .into_iter()
            .map(|n| gate.admit(ip(n)).unwrap())
            .collect();
        // A legitimate client gets in: the oldest of address 1 is told to go.
        let legit = gate.admit(ip(9)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), flood[0].evicted())
            .await
            .expect("the oldest flood connection was evicted");
        assert_eq!(gate.load(ip(9)), (1, 4));
        // Address 1 still waits the most: another newcomer takes its next place...
        let other = gate.admit(ip(8)).unwrap();
        assert!(flood[1].evicted.is_cancelled());
        // ...but once every address waits alike, a newcomer is refused, not let in by
        // turning out someone waiting no more than it would.
        assert_eq!(gate.admit(ip(7)).unwrap_err(), Full::Unauthenticated);
        assert_eq!(gate.admit(ip(9)).unwrap_err(), Full::Unauthenticated);
        drop(flood);
        drop((legit, other));
        assert_eq!(gate.load(ip(9)), (0, 0));
    }
}
