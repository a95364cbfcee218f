//! Admission: how many connections one address may hold and how many may wait to log in,
//! so that a flood from one address (idle sockets, slowloris, guessing) leaves room for
//! everyone else. Pure bookkeeping; a [`Ticket`] gives its place back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::agent::settings::Limits;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Its address already holds its share.
    Address,
    /// Too many connections are waiting to log in.
    Unauthenticated,
}

#[derive(Debug, Default)]
struct Counts {
    per_address: HashMap<IpAddr, usize>,
    unauthenticated: usize,
}

/// The admission rules and current counts.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// One admitted connection's place: counted against its address, and against the
/// unauthenticated until [`Ticket::logged_in`].
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
    waiting: bool,
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

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Gate>, ip: IpAddr) -> Result<Ticket, Full> {
        let mut c = self.counts();
        if c.per_address.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_address {
            return Err(Full::Address);
        }
        if c.unauthenticated >= self.limits.max_unauthenticated {
            return Err(Full::Unauthenticated);
        }
        *c.per_address.entry(ip).or_insert(0) += 1;
        c.unauthenticated += 1;
        Ok(Ticket {
            gate: Arc::clone(self),
            ip,
            waiting: true,
        })
    }

    /// (connections from `ip`, connections waiting to log in), for tests and logs.
    pub fn load(&self, ip: IpAddr) -> (usize, usize) {
        let c = self.counts();
        (
            c.per_address.get(&ip).copied().unwrap_or(0),
            c.unauthenticated,
        )
    }
}

impl Ticket {
    /// The connection logged in: it no longer counts as waiting.
    pub fn logged_in(&mut self) {
        if std::mem::take(&mut self.waiting) {
            self.gate.counts().unauthenticated -= 1;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut c = self.gate.counts();
        if self.waiting {
            c.unauthenticated -= 1;
        }
        if let Some(n) = c.per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_address.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_place_and_places_come_back() {
        let gate = Gate::new(Limits {
            max_unauthenticated: 3,
            max_per_address: 2,
            ..Limits::default()
        });
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
        );
        let a1 = gate.admit(a).unwrap();
        let mut a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Full::Address);
        let b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(c).unwrap_err(), Full::Unauthenticated);
        // Logging in frees a waiting place but not the address's share.
        a2.logged_in();
        assert_eq!(gate.load(a), (2, 2));
        let c1 = gate.admit(c).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Full::Address);
        drop((a1, a2, b1, c1));
        assert_eq!(gate.load(a), (0, 0));
        assert!(gate.admit(a).is_ok());
    }
}
