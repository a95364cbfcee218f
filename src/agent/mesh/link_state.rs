//! Above the full mesh, link state between members: this machine's announcement when
//! its live links change, announcements neighbours flood on to the others, and the answer
//! to an announcement older than the one held.
//!
//! Flooding is batched: announcements queue per neighbour and go in one message each at
//! the next tick — while a cluster forms, a join changes a dozen members' links and every
//! announcement crosses every link, so sending each at once cost more messages than all
//! else together. An announcement that *loses* a link goes at once, with all that is
//! queued, if the overlay still wants that link: that is how a failure reaches every
//! member within its detection budget. One that only adds links, or drops one the
//! overlay moved elsewhere (a join rewires a few), can wait a tick a hop: routes over a
//! link closed on purpose fail over at its ends, which know it closed.

use std::collections::{BTreeMap, BTreeSet};

use super::runtime::Runtime;
use crate::model::MachineName;
use crate::protocol::link_state::{Lsa, Received};
use crate::protocol::wire::PeerMsg;

impl Runtime {
    /// Above the full mesh: floods this machine's announcement when its live links
    /// changed.
    pub(super) fn announce(&mut self) {
        let before = self.table.announced_links(&self.me.machine).cloned();
        if let Some(lsa) = self.table.originate(self.now_ms(), crate::state::wall_ms()) {
            self.flood_now |= loses_wanted_link(&self.overlay_links, before.as_ref(), &lsa);
            self.flood(vec![lsa], None);
        }
    }

    /// Sends announcements to every neighbour linked now but `except`.
    pub(super) fn flood(&mut self, lsas: Vec<Lsa>, except: Option<&MachineName>) {
        if lsas.is_empty() {
            return;
        }
        for m in self.links.keys().filter(|m| Some(*m) != except) {
            let queued = self.floods.entry(m.clone()).or_default();
            for lsa in &lsas {
                // A newer announcement of the same member replaces one still waiting.
                match queued.iter_mut().find(|q| q.origin == lsa.origin) {
                    Some(q) if q.seq < lsa.seq => *q = lsa.clone(),
                    Some(_) => {}
                    None => queued.push(lsa.clone()),
                }
            }
        }
    }

    /// Sends the announcements [`Runtime::flood`] queued, one message per neighbour: at
    /// each tick, and after an event that queued one losing a link (`flood_now`).
    pub(super) fn send_floods(&mut self) {
        self.flood_now = false;
        for (m, lsas) in std::mem::take(&mut self.floods) {
            if !lsas.is_empty() {
                self.send_direct(&m, PeerMsg::LinkState { lsas });
            }
        }
    }

    /// Sends `peer` every announcement held: over a new link, and to every neighbour when
    /// this machine switches to the overlay.
    pub(super) fn send_all_link_state(&mut self, peer: &MachineName) {
        let lsas = self.table.lsas();
        self.send_direct(peer, PeerMsg::LinkState { lsas });
    }

    /// Announcements a neighbour flooded: the new ones go on to the other neighbours.
    pub(super) fn on_link_state(&mut self, via: &MachineName, lsas: Vec<Lsa>) {
        let mut onward = Vec::new();
        let mut back = Vec::new();
        let mut own = None;
        for lsa in lsas {
            // `via` holds this one: what still waits to go to it of the same member, no
            // newer, need not go (in a burst, the copy it sent crosses ours).
            if let Some(queued) = self.floods.get_mut(via) {
                queued.retain(|q| q.origin != lsa.origin || q.seq > lsa.seq);
            }
            let loses = loses_wanted_link(
                &self.overlay_links,
                self.table.announced_links(&lsa.origin),
                &lsa,
            );
            match self.table.receive_lsa(lsa.clone()) {
                Received::New => {
                    self.flood_now |= loses;
                    onward.push(lsa);
                }
                Received::Own(mine) => {
                    // Restarted: what it held of itself is news to every member.
                    self.flood_now = true;
                    own = Some(mine);
                }
                Received::Older(held) => back.push(held),
                Received::Old => {}
            }
        }
        self.flood(onward, Some(via));
        if !back.is_empty() {
            self.send_direct(via, PeerMsg::LinkState { lsas: back });
        }
        if let Some(mine) = own {
            self.flood(vec![mine], None);
        }
    }
}

/// Whether `lsa` drops a link that the announcement held before it (`held`) listed and
/// the overlay (`wanted`, every member's links) still wants: a failure, not a rewiring.
/// A member the overlay does not know yet (its membership not merged here) wants every
/// link.
fn loses_wanted_link(
    wanted: &BTreeMap<MachineName, BTreeSet<MachineName>>,
    held: Option<&BTreeSet<MachineName>>,
    lsa: &Lsa,
) -> bool {
    let wanted = wanted.get(&lsa.origin);
    held.into_iter()
        .flatten()
        .filter(|m| !lsa.up.contains(*m))
        .any(|m| wanted.is_none_or(|w| w.contains(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> MachineName {
        MachineName::new(format!("{name}.example.com")).unwrap()
    }

    fn set(names: &[&str]) -> BTreeSet<MachineName> {
        names.iter().map(|n| m(n)).collect()
    }

    fn lsa(origin: &str, up: &[&str]) -> Lsa {
        Lsa {
            origin: m(origin),
            seq: 2,
            up: set(up),
        }
    }

    #[test]
    fn only_a_lost_link_the_overlay_still_wants_is_urgent() {
        let wanted = BTreeMap::from([(m("a"), set(&["b", "d"]))]);
        let held = set(&["b", "c"]);
        // c is no neighbour of a any more: the overlay moved that link.
        assert!(!loses_wanted_link(
            &wanted,
            Some(&held),
            &lsa("a", &["b", "d"])
        ));
        // b still is: a failure.
        assert!(loses_wanted_link(&wanted, Some(&held), &lsa("a", &["c"])));
        // Links added only, or nothing held before: nothing lost.
        assert!(!loses_wanted_link(
            &wanted,
            Some(&held),
            &lsa("a", &["b", "c", "d"])
        ));
        assert!(!loses_wanted_link(&wanted, None, &lsa("a", &[])));
        // A member the overlay here does not know yet: every lost link counts.
        assert!(loses_wanted_link(&wanted, Some(&held), &lsa("x", &["b"])));
    }
}
