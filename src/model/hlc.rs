//! Versions: a hybrid logical clock (HLC) and the (clock, origin machine) pair that
//! orders every write to an entry.
//!
//! A small HLC of our own rather than `uhlc`: it is pure (the wall time is passed in, so
//! tests drive it), it is one `u64` that sorts as it reads, and its skew bound is ours to
//! choose. A timestamp packs the physical time in milliseconds into the high 48 bits and a
//! logical counter into the low 16 bits. The clock never goes backwards: `now` returns
//! something greater than everything it returned or observed before, whatever the wall
//! clock does.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::names::MachineName;

const LOGICAL_BITS: u32 = 16;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

/// One hybrid-logical-clock reading; later readings compare greater.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct Hlc(pub u64);

impl Hlc {
    /// A reading at `ms` milliseconds since the epoch with logical counter `logical`.
    pub fn new(ms: u64, logical: u16) -> Hlc {
        Hlc((ms << LOGICAL_BITS) | u64::from(logical))
    }

    /// The physical part, in milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        (self.0 & LOGICAL_MASK) as u16
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.millis(), self.logical())
    }
}

/// A remote timestamp too far ahead of the local wall clock to be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a timestamp {ahead_ms} ms ahead of this machine's clock exceeds the {max_ms} ms bound")]
pub struct ClockSkew {
    /// How far ahead the remote reading was.
    pub ahead_ms: u64,
    /// The configured bound.
    pub max_ms: u64,
}

/// A hybrid logical clock. It does not read the time itself: callers pass the wall time.
#[derive(Debug, Clone)]
pub struct Clock {
    last: Hlc,
    /// How far ahead of the local wall clock a remote reading may be before `observe`
    /// refuses it. Deliberately generous (uhlc's default is 500 ms): appliances with
    /// loosely synchronised clocks must still accept each other's updates; the bound only
    /// stops one wildly wrong clock from dragging every version into the future.
    pub max_drift_ms: u64,
}

impl Clock {
    /// The default skew bound: one hour.
    pub const DEFAULT_MAX_DRIFT_MS: u64 = 3_600_000;

    /// A clock that continues after `last` (the greatest reading already used, from the
    /// store), so versions stay monotonic across restarts.
    pub fn starting_after(last: Hlc) -> Clock {
        Clock {
            last,
            max_drift_ms: Self::DEFAULT_MAX_DRIFT_MS,
        }
    }

    /// A new reading for a local event at wall time `wall_ms`.
    pub fn now(&mut self, wall_ms: u64) -> Hlc {
        let next = if wall_ms > self.last.millis() {
            Hlc::new(wall_ms, 0)
        } else if self.last.logical() == u16::MAX {
            // The counter is exhausted within one millisecond: borrow the next one.
            Hlc::new(self.last.millis() + 1, 0)
        } else {
            Hlc(self.last.0 + 1)
        };
        self.last = next;
        next
    }

    /// Merges a reading received from another machine; the next local reading will be
    /// greater than it.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Result<(), ClockSkew> {
        let ahead = remote.millis().saturating_sub(wall_ms);
        if ahead > self.max_drift_ms {
            return Err(ClockSkew {
                ahead_ms: ahead,
                max_ms: self.max_drift_ms,
            });
        }
        if remote > self.last {
            self.last = remote;
        }
        Ok(())
    }

    /// The greatest reading used or observed so far.
    pub fn last(&self) -> Hlc {
        self.last
    }
}

/// The version of one write: its clock reading, then the machine it was made on. The
/// pair is a total order (ties on the clock alone happen), so last-writer-wins resolves
/// identically everywhere.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Version {
    /// When, on the hybrid logical clock.
    pub hlc: Hlc,
    /// The machine that made the write.
    pub origin: MachineName,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.hlc, self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_monotonic_when_the_wall_clock_stalls_or_goes_back() {
        let mut c = Clock::starting_after(Hlc::default());
        let a = c.now(1_000);
        let b = c.now(1_000);
        let d = c.now(900);
        let e = c.now(1_001);
        assert!(a < b && b < d && d < e);
        assert_eq!((a.millis(), a.logical()), (1_000, 0));
        assert_eq!((d.millis(), d.logical()), (1_000, 2));
        assert_eq!(e, Hlc::new(1_001, 0));
    }

    #[test]
    fn an_exhausted_counter_borrows_the_next_millisecond() {
        let mut c = Clock::starting_after(Hlc::new(5, u16::MAX));
        assert_eq!(c.now(5), Hlc::new(6, 0));
    }

    #[test]
    fn observing_a_later_reading_moves_the_clock_past_it() {
        let mut c = Clock::starting_after(Hlc::default());
        c.observe(Hlc::new(2_000, 7), 1_500).unwrap();
        assert!(c.now(1_500) > Hlc::new(2_000, 7));
    }

    #[test]
    fn a_reading_beyond_the_skew_bound_is_refused() {
        let mut c = Clock::starting_after(Hlc::default());
        c.max_drift_ms = 1_000;
        let err = c.observe(Hlc::new(10_000, 0), 5_000).unwrap_err();
        assert_eq!(err.ahead_ms, 5_000);
        assert_eq!(c.last(), Hlc::default());
        // Skewed, but within the bound: accepted.
        c.observe(Hlc::new(5_900, 0), 5_000).unwrap();
    }

    #[test]
    fn versions_break_clock_ties_by_origin() {
        let v = |o: &str| Version {
            hlc: Hlc::new(1, 0),
            origin: MachineName::new(o).unwrap(),
        };
        assert!(v("a") < v("b"));
    }
}
