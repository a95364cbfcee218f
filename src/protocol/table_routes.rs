//! Routes of the link table: the links that count, the first hop towards every
//! reachable peer (a breadth-first search over them), and, above the full mesh, the
//! routes kept until the link state or this machine's own links change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use super::Table;
use crate::model::MachineName;

/// The routes last computed; a copy of the table starts without.
#[derive(Debug, Default)]
pub(super) struct RouteCache(Mutex<Option<CachedRoutes>>);

impl Clone for RouteCache {
    fn clone(&self) -> RouteCache {
        RouteCache::default()
    }
}

/// Routes computed from the link state, and what they were computed from.
#[derive(Debug)]
struct CachedRoutes {
    generation: u64,
    own: Vec<MachineName>,
    first_hops: BTreeMap<MachineName, MachineName>,
}

impl Table {
    /// The links of `from` that still count at `now_ms` (see the module header).
    fn live_edges<'a>(&'a self, from: &MachineName, now_ms: u64) -> Vec<&'a MachineName> {
        if *from == self.me {
            return self
                .peers
                .iter()
                .filter(|p| self.is_up(p, now_ms))
                .collect();
        }
        if let Some(ls) = &self.link_state {
            return ls.two_way(from).collect();
        }
        let Some(view) = self.views.get(from) else {
            return Vec::new();
        };
        let age = now_ms.saturating_sub(view.at_ms);
        view.links
            .iter()
            .filter(|l| {
                l.heard_ago_ms
                    .is_some_and(|ago| ago.saturating_add(age) < self.down_after_ms())
            })
            .map(|l| &l.to)
            .collect()
    }

    /// The first hop towards every reachable peer (a breadth-first search from here over
    /// the links that count).
    pub fn routes(&self, now_ms: u64) -> BTreeMap<MachineName, MachineName> {
        self.with_routes(now_ms, Clone::clone)
    }

    /// Runs `f` on the routes at `now_ms`. Above the full mesh they come from the link
    /// state and this machine's own live links, so they are computed again only when
    /// either changed (a tick, every routed envelope and every alert check ask for them);
    /// in a full mesh the pings' reports age, and they are computed each time.
    pub(super) fn with_routes<R>(
        &self,
        now_ms: u64,
        f: impl FnOnce(&BTreeMap<MachineName, MachineName>) -> R,
    ) -> R {
        if self.link_state.is_none() {
            return f(&self.compute_routes(now_ms));
        }
        let own: Vec<MachineName> = self
            .live_edges(&self.me, now_ms)
            .into_iter()
            .cloned()
            .collect();
        let mut cache = self.routes.0.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.generation == self.generation && c.own == own);
        if !fresh {
            *cache = Some(CachedRoutes {
                generation: self.generation,
                own,
                first_hops: self.compute_routes(now_ms),
            });
        }
        f(&cache.as_ref().expect("just filled").first_hops)
    }

    fn compute_routes(&self, now_ms: u64) -> BTreeMap<MachineName, MachineName> {
        let mut first: BTreeMap<MachineName, MachineName> = BTreeMap::new();
        let mut queue: VecDeque<&MachineName> = VecDeque::new();
        for p in self.live_edges(&self.me, now_ms) {
            first.insert(p.clone(), p.clone());
            queue.push_back(p);
        }
        while let Some(node) = queue.pop_front() {
            let hop = first[node].clone();
            for next in self.live_edges(node, now_ms) {
                if *next != self.me && self.peers.contains(next) && !first.contains_key(next) {
                    first.insert(next.clone(), hop.clone());
                    queue.push_back(next);
                }
            }
        }
        first
    }

    /// The first hop towards `to`, if it can be reached.
    pub fn next_hop(&self, to: &MachineName, now_ms: u64) -> Option<MachineName> {
        if self.is_up(to, now_ms) {
            return Some(to.clone());
        }
        self.with_routes(now_ms, |r| r.get(to).cloned())
    }
}
