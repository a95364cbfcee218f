//! What the runtime shows of the mesh to the request handlers (`status`, `cluster
//! list`, `connstatus`, `check`): the membership, links, routes and stores as this member
//! sees them now.

use std::collections::{BTreeMap, BTreeSet};

use super::runtime::Runtime;
use crate::model::{MachineName, Membership};
use crate::protocol::status::{ConnStatus, LinkView};
use crate::state::StoreFailure;

/// The mesh as this member sees it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every member's membership (this machine's included).
    pub members: BTreeMap<MachineName, Membership>,
    /// The peers this machine keeps links with.
    pub peers: BTreeSet<MachineName>,
    /// The first hop to every reachable peer.
    pub routes: BTreeMap<MachineName, MachineName>,
    /// Peers with a live direct link.
    pub direct: BTreeSet<MachineName>,
    /// `connstatus`.
    pub status: ConnStatus,
    /// The members that cannot write their store: peers as their last ping said, and
    /// this machine.
    pub store_failures: BTreeMap<MachineName, StoreFailure>,
}

impl Runtime {
    pub(super) fn snapshot(&self) -> Snapshot {
        let now = self.now_ms();
        let mut own = self.table.own_view(now);
        for l in own.links.iter_mut().filter(|l| !l.up) {
            l.why = MachineName::new(&l.to)
                .ok()
                .and_then(|m| self.failing.get(&m))
                .map(ToString::to_string);
        }
        let mut views = vec![own];
        views.extend(self.table.peer_views(now));
        views.sort_by(|a: &LinkView, b| a.machine.cmp(&b.machine));
        Snapshot {
            members: self.members.clone(),
            peers: self.table.peers().clone(),
            routes: self.table.routes(now),
            direct: self
                .table
                .peers()
                .iter()
                .filter(|p| self.table.is_up(p, now))
                .cloned()
                .collect(),
            status: ConnStatus {
                machine: self.me.machine.to_string(),
                views,
            },
            store_failures: self
                .peer_stores
                .iter()
                .filter(|(m, _)| self.table.peers().contains(*m))
                .map(|(m, f)| (m.clone(), f.clone()))
                .chain(
                    self.agent
                        .node
                        .store_failure()
                        .map(|f| (self.me.machine.clone(), f)),
                )
                .collect(),
        }
    }
}
