//! Refused logins per address (or per user name), for the growing delay. Pure (the time
//! is passed in) and bounded: an address not refused for [`MAX_DELAY`] starts afresh and
//! its entry goes, and past [`CAPACITY`] addresses the one refused longest ago is
//! forgotten, so an attacker cycling source addresses cannot grow the table without limit.
//!
//! A delay is not all held on the connection. An address with a delay pending gets its
//! answer at once, unchecked ("login delayed after failed attempts; retry in N s"); what
//! is held is at most [`MAX_HOLD`], tied below the timeouts around a login.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::agent_kdl::DEFAULT_LOGIN_TIMEOUT_MS;
use crate::protocol::CONNECT_TIMEOUT;

/// The longest delay refusals earn; also how long an address's refusals are remembered.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// The longest the agent holds one passphrase attempt: the wait for the delay the user's
/// refusals from other addresses earned, then the check, then the refusal's own hold are
/// all within it (plus the argon2 check itself). Before issue 20 a held attempt could
/// reach [`MAX_DELAY`], which was the client's [`CONNECT_TIMEOUT`]: guesses from many
/// addresses made the real administrator's login wait 30 s and the client report "no
/// answer within 30 s … is `strata agent` running?".
pub const MAX_HOLD: Duration = Duration::from_secs(4);

// What ties MAX_HOLD to the timeouts around a login: a held attempt is answered before
// the agent's own login deadline (`login-timeout-ms`, checked below for the default and
// at each attempt for the configured one) and long before the client gives up on the
// agent, leaving time for the TCP and SSH handshakes and for the argon2 check, which may
// wait its turn behind others.
const _: () = assert!(2 * MAX_HOLD.as_millis() <= DEFAULT_LOGIN_TIMEOUT_MS as u128);
const _: () = assert!(4 * MAX_HOLD.as_millis() <= CONNECT_TIMEOUT.as_millis());

/// At most this many addresses are remembered.
pub const CAPACITY: usize = 4096;

/// How long to hold the answer to the `n`th refusal in a row (from 1): the base delay,
/// doubled per further refusal, at most [`MAX_DELAY`].
pub fn refusal_delay(base_ms: u64, n: u32) -> Duration {
    let factor = 1u64 << n.saturating_sub(1).min(10);
    Duration::from_millis(base_ms.saturating_mul(factor)).min(MAX_DELAY)
}

/// Refusals in a row per address (or other key), with the time of the last one.
#[derive(Debug)]
pub struct Penalties<K = IpAddr> {
    entries: HashMap<K, (u32, Instant)>,
    capacity: usize,
    window: Duration,
}

impl<K: Hash + Eq + Clone> Default for Penalties<K> {
    fn default() -> Self {
        Penalties::new(CAPACITY, MAX_DELAY)
    }
}

impl<K: Hash + Eq + Clone> Penalties<K> {
    /// A table remembering at most `capacity` addresses, each for `window` after its
    /// last refusal.
    pub fn new(capacity: usize, window: Duration) -> Penalties<K> {
        Penalties {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            window,
        }
    }

    /// How many refusals in a row `key` has at `now` (0: none remembered).
    pub fn count(&self, key: &K, now: Instant) -> u32 {
        self.entries
            .get(key)
            .filter(|(_, last)| now.saturating_duration_since(*last) <= self.window)
            .map_or(0, |(n, _)| *n)
    }

    /// How long until the delay `key`'s refusals earned has passed at `now` (zero when
    /// none is pending): `delay(n)` after its `n`th refusal in a row, counted from the
    /// last one.
    pub fn remaining(&self, key: &K, now: Instant, delay: impl Fn(u32) -> Duration) -> Duration {
        match self.entries.get(key) {
            Some((n, last)) if now.saturating_duration_since(*last) <= self.window => {
                (*last + delay(*n)).saturating_duration_since(now)
            }
            _ => Duration::ZERO,
        }
    }

    /// Records a refusal from `ip` at `now` (an attempt's start: a refusal found later
    /// than one of an attempt that started after it does not move the time back);
    /// returns how many in a row (from 1).
    pub fn refuse(&mut self, ip: K, now: Instant) -> u32 {
        let window = self.window;
        self.entries
            .retain(|_, (_, last)| now.saturating_duration_since(*last) <= window);
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.capacity {
            let oldest = self.entries.iter().min_by_key(|(_, (_, last))| *last);
            if let Some(old) = oldest.map(|(k, _)| k.clone()) {
                self.entries.remove(&old);
            }
        }
        let entry = self.entries.entry(ip).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = entry.1.max(now);
        entry.0
    }

    /// Forgets `ip` (after a successful login).
    pub fn forget(&mut self, ip: &K) {
        self.entries.remove(ip);
    }

    /// How many addresses are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn the_refusal_delay_grows_and_is_capped() {
        let ms = |n| refusal_delay(1000, n).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(4)], [1000, 2000, 4000, 8000]);
        assert_eq!(ms(6), 30_000);
        assert_eq!(ms(100), 30_000);
        assert_eq!(refusal_delay(0, 5), Duration::ZERO);
    }

    #[test]
    fn refusals_count_in_a_row_and_are_forgotten_after_the_window_or_a_success() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = Penalties::new(10, s(30));
        assert_eq!(p.refuse(ip(1), t0), 1);
        assert_eq!(p.refuse(ip(1), t0 + s(20)), 2);
        // Within the window of the last refusal: still counted.
        assert_eq!(p.refuse(ip(1), t0 + s(50)), 3);
        assert_eq!(p.refuse(ip(2), t0 + s(50)), 1);
        // Past the window: both entries go; the next refusal starts afresh.
        assert_eq!(p.refuse(ip(3), t0 + s(81)), 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p.refuse(ip(1), t0 + s(82)), 1);
        p.forget(&ip(1));
        assert_eq!(p.count(&ip(1), t0 + s(83)), 0);
        assert_eq!(p.count(&ip(3), t0 + s(83)), 1);
        assert_eq!(p.count(&ip(3), t0 + s(200)), 0, "past its window");
        assert_eq!(p.refuse(ip(1), t0 + s(83)), 1);
    }

    #[test]
    fn what_remains_of_a_delay_is_counted_from_the_last_refusal() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = Penalties::new(10, MAX_DELAY);
        let delay = |n| refusal_delay(1000, n);
        assert_eq!(p.remaining(&ip(1), t0, delay), Duration::ZERO);
        p.refuse(ip(1), t0);
        p.refuse(ip(1), t0 + s(1));
        // The second refusal earned 2 s, from its own time.
        assert_eq!(p.remaining(&ip(1), t0 + s(1), delay), s(2));
        assert_eq!(
            p.remaining(&ip(1), t0 + Duration::from_millis(2_500), delay),
            Duration::from_millis(500)
        );
        assert_eq!(p.remaining(&ip(1), t0 + s(3), delay), Duration::ZERO);
        assert_eq!(p.remaining(&ip(2), t0 + s(1), delay), Duration::ZERO);
    }

    #[test]
    fn cycling_addresses_never_grows_the_table_past_its_capacity() {
        let t0 = Instant::now();
        let mut p = Penalties::new(100, MAX_DELAY);
        // A persistent attacker, then 10 000 others within the window.
        assert_eq!(p.refuse(ip(0), t0), 1);
        for n in 1..=10_000 {
            p.refuse(ip(n), t0 + Duration::from_millis(u64::from(n)));
            assert!(p.len() <= 100);
        }
        assert_eq!(p.len(), 100);
        // The oldest went first: the newest hundred remain, the first one is gone.
        let now = t0 + Duration::from_secs(11);
        assert_eq!(p.refuse(ip(10_000), now), 2);
        assert_eq!(p.refuse(ip(0), now), 1);
        assert_eq!(p.len(), 100);
    }
}
