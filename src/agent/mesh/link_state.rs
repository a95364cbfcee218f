//! Above the full mesh, link state between members: this machine's announcement when
//! its live links change, announcements neighbours flood on to the others (batched: those
//! queued while the runtime handles a burst of events go in one message per neighbour),
//! and the answer to an announcement older than the one held.

use super::runtime::Runtime;
use crate::model::MachineName;
use crate::protocol::link_state::{Lsa, Received};
use crate::protocol::wire::PeerMsg;

impl Runtime {
    /// Above the full mesh: floods this machine's announcement when its live links
    /// changed.
    pub(super) fn announce(&mut self) {
        if let Some(lsa) = self.table.originate(self.now_ms(), crate::state::wall_ms()) {
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

    /// Sends the announcements [`Runtime::flood`] queued, one message per neighbour.
    pub(super) fn send_floods(&mut self) {
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
            match self.table.receive_lsa(lsa.clone()) {
                Received::New => onward.push(lsa),
                Received::Own(mine) => own = Some(mine),
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
