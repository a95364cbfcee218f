//! Link state for the overlay ([`super::overlay`]): when members no longer all link to
//! one another, pings no longer tell every member every link. Instead each member
//! *originates* a link-state announcement (an [`Lsa`]: the members its direct links are
//! up to, with a sequence number) whenever that set changes, and every member forwards an
//! announcement newer than the one it holds to its other neighbours — a flood that
//! crosses each link once. A new link starts with both ends sending everything they
//! hold, so a member that was away or cut off catches up at once.
//!
//! Routes are computed over *two-way* links only: a link counts when both ends announce
//! it. So a member that dies or is cut off, whose own last announcement still lists its
//! links, is unreachable as soon as its neighbours announce those links down — which
//! they do the moment they close them (after [`super::table::DOWN_AFTER`] quiet
//! intervals): detection takes the same intervals as in the full mesh, plus the flood.
//! Idle, nothing is flooded: an announcement changes only when a link does.
//!
//! Sequence numbers start from the wall clock at origination and only grow, so a member
//! that restarts is not ignored for announcing a smaller number than before; one that
//! hears of its own announcement with a number above its own (its clock went back)
//! announces again above it. An announcement older than the one held is answered with
//! the one held, so a restarted member whose last announcement before the restart was
//! still in flight learns of it (the simulation found that case: the flood never sends an
//! announcement back to the member it came from). Pure: no sockets, no clock of its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::MachineName;

/// One member's links, as it announced them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lsa {
    /// Who announced it.
    pub origin: MachineName,
    /// Grows with every announcement of `origin`'s.
    pub seq: u64,
    /// The members its direct links were up to.
    pub up: BTreeSet<MachineName>,
}

/// What a received announcement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Newer than what was held: stored; forward it to the other neighbours.
    New,
    /// Not newer (or from a machine that is not a member): dropped.
    Old,
    /// Older than the one held: dropped, and the one held goes back to the sender, which
    /// may be the origin itself, restarted and announcing below what it announced before
    /// (the flood never brings an announcement back to the member that sent it).
    Older(Lsa),
    /// One of this machine's own, at least as new as its current one: this machine
    /// announces again above it; flood this instead.
    Own(Lsa),
}

/// The announcements one member holds, its own included.
#[derive(Debug, Clone)]
pub struct LinkState {
    me: MachineName,
    own: Option<Lsa>,
    db: BTreeMap<MachineName, Lsa>,
}

impl LinkState {
    /// Nothing announced yet.
    pub fn new(me: MachineName) -> LinkState {
        LinkState {
            me,
            own: None,
            db: BTreeMap::new(),
        }
    }

    /// This machine's links are up to `up` now (at wall time `wall_ms`): the announcement
    /// to flood, if that changed.
    pub fn originate(&mut self, up: BTreeSet<MachineName>, wall_ms: u64) -> Option<Lsa> {
        if self.own.as_ref().is_some_and(|o| o.up == up) {
            return None;
        }
        let seq = self
            .own
            .as_ref()
            .map_or(wall_ms, |o| (o.seq + 1).max(wall_ms));
        let lsa = Lsa {
            origin: self.me.clone(),
            seq,
            up,
        };
        self.own = Some(lsa.clone());
        Some(lsa)
    }

    /// An announcement from a neighbour.
    pub fn receive(&mut self, lsa: Lsa) -> Received {
        if lsa.origin == self.me {
            // Its own current announcement, flooded back round a cycle, is no news; one
            // with a number above it (or the same number, other links) was announced by
            // this machine before a restart.
            return match &mut self.own {
                Some(own) if lsa.seq > own.seq || (lsa.seq == own.seq && lsa.up != own.up) => {
                    own.seq = lsa.seq + 1;
                    Received::Own(own.clone())
                }
                _ => Received::Old,
            };
        }
        match self.db.get(&lsa.origin) {
            Some(held) if held.seq > lsa.seq => Received::Older(held.clone()),
            Some(held) if held.seq == lsa.seq => Received::Old,
            _ => {
                self.db.insert(lsa.origin.clone(), lsa);
                Received::New
            }
        }
    }

    /// Everything held, this machine's own first: what a new link starts with.
    pub fn all(&self) -> Vec<Lsa> {
        self.own.iter().chain(self.db.values()).cloned().collect()
    }

    /// Forgets the announcements of machines that are not `members` any more.
    pub fn retain(&mut self, members: &BTreeSet<MachineName>) {
        self.db.retain(|m, _| members.contains(m));
    }

    /// The announcement of `m` held, if any.
    pub fn get(&self, m: &MachineName) -> Option<&Lsa> {
        if *m == self.me {
            self.own.as_ref()
        } else {
            self.db.get(m)
        }
    }

    /// The links of `from` that both ends announce.
    pub fn two_way<'a>(&'a self, from: &MachineName) -> impl Iterator<Item = &'a MachineName> {
        let from_up = self.get(from).map(|l| &l.up);
        let from = from.clone();
        from_up
            .into_iter()
            .flatten()
            .filter(move |to| self.get(to).is_some_and(|l| l.up.contains(&from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> MachineName {
        MachineName::new(name).unwrap()
    }

    fn set(names: &[&str]) -> BTreeSet<MachineName> {
        names.iter().map(|n| m(n)).collect()
    }

    #[test]
    fn an_announcement_is_made_when_the_links_change_and_only_grows() {
        let mut a = LinkState::new(m("a"));
        let first = a.originate(set(&["b"]), 1_000).unwrap();
        assert_eq!(first.seq, 1_000);
        assert_eq!(
            a.originate(set(&["b"]), 2_000),
            None,
            "unchanged: nothing to flood"
        );
        // The wall clock went back: the number still grows.
        let second = a.originate(set(&["b", "c"]), 500).unwrap();
        assert_eq!(second.seq, 1_001);
    }

    #[test]
    fn newer_announcements_replace_older_ones_and_are_forwarded_once() {
        let mut a = LinkState::new(m("a"));
        let lsa = |seq, up: &[&str]| Lsa {
            origin: m("b"),
            seq,
            up: set(up),
        };
        assert_eq!(a.receive(lsa(5, &["a"])), Received::New);
        assert_eq!(
            a.receive(lsa(5, &["a"])),
            Received::Old,
            "seen: not forwarded again"
        );
        assert_eq!(
            a.receive(lsa(4, &["a", "c"])),
            Received::Older(lsa(5, &["a"]))
        );
        assert_eq!(a.receive(lsa(6, &[])), Received::New);
        assert!(a.get(&m("b")).unwrap().up.is_empty());
    }

    #[test]
    fn a_link_counts_when_both_ends_announce_it() {
        let mut a = LinkState::new(m("a"));
        a.originate(set(&["b"]), 1);
        let from = |o: &str, up: &[&str]| Lsa {
            origin: m(o),
            seq: 10,
            up: set(up),
        };
        a.receive(from("b", &["a", "c"]));
        // c has not announced b: b–c does not count yet.
        assert_eq!(a.two_way(&m("b")).collect::<Vec<_>>(), [&m("a")]);
        a.receive(from("c", &["b"]));
        assert_eq!(a.two_way(&m("b")).collect::<Vec<_>>(), [&m("a"), &m("c")]);
        // c dies: b announces the link down; c's stale announcement no longer counts.
        a.receive(Lsa {
            origin: m("b"),
            seq: 11,
            up: set(&["a"]),
        });
        assert_eq!(a.two_way(&m("c")).count(), 0);
    }

    #[test]
    fn its_own_announcement_coming_back_is_no_news() {
        let mut a = LinkState::new(m("a"));
        let own = a.originate(set(&["b"]), 100).unwrap();
        assert_eq!(
            a.receive(own.clone()),
            Received::Old,
            "else it would flood forever"
        );
        assert_eq!(a.get(&m("a")), Some(&own));
    }

    #[test]
    fn a_restarted_member_announces_above_what_it_announced_before() {
        let mut a = LinkState::new(m("a"));
        a.originate(set(&["b"]), 100);
        // Its announcement before the restart, at 900, comes back from a neighbour.
        let back = a.receive(Lsa {
            origin: m("a"),
            seq: 900,
            up: set(&["b", "c"]),
        });
        match back {
            Received::Own(own) => {
                assert_eq!(own.seq, 901);
                assert_eq!(own.up, set(&["b"]));
            }
            other => panic!("{other:?}"),
        }
    }
}
