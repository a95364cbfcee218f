//! Which members keep a direct link with which: the seed's full mesh up to a size, and
//! above it a bounded-degree overlay, so that a member's links, pings and SSH sessions
//! grow with the logarithm of the cluster, not with it. Pure: every member computes the
//! same answer from the same membership.
//!
//! The overlay puts the members on a ring, in name order; each links to the members at
//! ring distances 1, 2, 4, 8, … in both directions. The relation is symmetric (if b is d
//! ahead of a, a is d behind b), each member has at most 2⌈log₂ n⌉ links, and any member
//! is at most ⌈log₂ n⌉ hops from any other (a distance is a sum of distinct powers of
//! two), which stays within [`super::wire::MAX_HOPS`] up to 256 members. Losing one
//! member leaves the others connected (distance 1 is bridged by distance 2).

use std::collections::BTreeSet;

use crate::model::MachineName;

/// Up to this many members the cluster keeps the seed's full mesh (the default of
/// `cluster-mesh full-mesh-up-to=`).
pub const FULL_MESH_UP_TO: usize = 64;

/// The members `me` keeps direct links with, among `members` (`me` included or not):
/// every other member while there are at most `full_mesh_up_to`, else its ring
/// neighbours at distances 1, 2, 4, ….
pub fn neighbors(
    members: &BTreeSet<MachineName>,
    me: &MachineName,
    full_mesh_up_to: usize,
) -> BTreeSet<MachineName> {
    let mut ring: Vec<&MachineName> = members.iter().collect();
    if !members.contains(me) {
        ring.push(me);
        ring.sort();
    }
    let n = ring.len();
    if n <= full_mesh_up_to.max(1) {
        return members.iter().filter(|m| *m != me).cloned().collect();
    }
    let at = ring.iter().position(|m| *m == me).unwrap_or(0);
    let mut out = BTreeSet::new();
    let mut d = 1;
    while d < n {
        out.insert(ring[(at + d) % n].clone());
        out.insert(ring[(at + n - d % n) % n].clone());
        d *= 2;
    }
    out.remove(me);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, VecDeque};

    fn members(n: usize) -> BTreeSet<MachineName> {
        (1..=n)
            .map(|i| MachineName::new(format!("lab{i:03}.example.com")).unwrap())
            .collect()
    }

    fn graph(
        all: &BTreeSet<MachineName>,
        up_to: usize,
    ) -> BTreeMap<MachineName, BTreeSet<MachineName>> {
        all.iter()
            .map(|m| (m.clone(), neighbors(all, m, up_to)))
            .collect()
    }

    /// The longest shortest path, or `None` when not connected.
    fn diameter(g: &BTreeMap<MachineName, BTreeSet<MachineName>>) -> Option<usize> {
        let mut worst = 0;
        for start in g.keys() {
            let mut dist = BTreeMap::from([(start, 0usize)]);
            let mut queue = VecDeque::from([start]);
            while let Some(x) = queue.pop_front() {
                for y in &g[x] {
                    if !dist.contains_key(y) && g.contains_key(y) {
                        dist.insert(y, dist[x] + 1);
                        queue.push_back(y);
                    }
                }
            }
            if dist.len() != g.len() {
                return None;
            }
            worst = worst.max(*dist.values().max().unwrap());
        }
        Some(worst)
    }

    #[test]
    fn small_clusters_keep_the_full_mesh() {
        let all = members(20);
        let me = all.iter().next().unwrap();
        assert_eq!(neighbors(&all, me, FULL_MESH_UP_TO).len(), 19);
    }

    #[test]
    fn the_overlay_is_symmetric_bounded_and_short() {
        for n in [5, 17, 65, 100, 200, 256] {
            let all = members(n);
            let g = graph(&all, 4);
            let log = (n as f64).log2().ceil() as usize;
            for (m, ns) in &g {
                assert!(ns.len() <= 2 * log, "{m} has {} links among {n}", ns.len());
                for x in ns {
                    assert!(g[x].contains(m), "{m} → {x} but not back, n={n}");
                }
            }
            let d = diameter(&g).unwrap();
            assert!(d <= log, "n={n}: diameter {d} > {log}");
            assert!(d <= crate::protocol::wire::MAX_HOPS as usize);
        }
    }

    #[test]
    fn losing_any_one_member_leaves_the_rest_connected() {
        let all = members(100);
        for gone in all.iter().step_by(7) {
            let mut g = graph(&all, 4);
            g.remove(gone);
            for ns in g.values_mut() {
                ns.remove(gone);
            }
            assert!(diameter(&g).is_some(), "without {gone}");
        }
    }

    #[test]
    fn a_member_not_yet_in_the_set_gets_its_place_on_the_ring() {
        let all = members(100);
        let me = MachineName::new("lab050x.example.com").unwrap();
        let ns = neighbors(&all, &me, 4);
        assert!(ns.contains(&MachineName::new("lab050.example.com").unwrap()));
        assert!(ns.contains(&MachineName::new("lab051.example.com").unwrap()));
    }
}
