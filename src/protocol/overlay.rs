//! Which members keep a direct link with which: the seed's full mesh up to a size, and
//! above it a bounded-degree overlay, so that a member's links, pings and SSH sessions
//! grow with the logarithm of the cluster, not with it. Pure: every member computes the
//! same answer from the same membership.
//!
//! The overlay puts the members on a ring, in name order, and links each to its two
//! ring neighbours — which keeps every member connected, and still connected without any
//! one member — and to the [`picks`] members whose pairing with it scores highest
//! (a hash of the two names, smaller first: rendezvous hashing). The relation is
//! symmetric (a link either end picks is kept by both), and random-looking links make a
//! small world: a few hops between any two members. A member that joins or leaves
//! changes the picks of only about as many members as each picks, not the whole ring's,
//! so a growing cluster does not rewire itself at every join (the first overlay, ring
//! distances 1, 2, 4, …, moved most links at each join: 99 joins took 5 minutes).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::MachineName;

/// Up to this many members the cluster keeps the seed's full mesh (the default of
/// `cluster-mesh full-mesh-up-to=`). Measured at 2 s pings: a full mesh of 50 idles at
/// 1.02% of a core per agent, the overlay of 50 at 0.19% and of 100 at 0.18%.
pub const FULL_MESH_UP_TO: usize = 32;

/// How many members each member picks among `n`: about log₂ n / 2 + 2 (5 at 100). With
/// the picks others make of it and its two ring neighbours, a member of 100 keeps 8.1
/// links on average (5 to 14, for lab1…lab100.example.com; at most 4 hops apart).
pub fn picks(n: usize) -> usize {
    (n.max(2) as f64).log2().ceil() as usize / 2 + 2
}

/// A member's name as a number: the first 8 bytes of its SHA-256.
fn digest(m: &MachineName) -> u64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(m.as_str().as_bytes());
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// SplitMix64's finalizer: every bit of the result depends on every bit of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The indices in `ring` (in name order) of the members each member picks: its k
/// best-scoring pairings. A pair scores the mix of its two digests, the smaller name's
/// first — the same from either end, and depending on those two names only, so a join
/// or a departure moves only the picks it wins or frees. One SHA-256 per member, one mix
/// per pair (a SHA-256 per pair cost 0.5 ms per member at 100, at every join).
fn picks_of(ring: &[&MachineName], k: usize) -> Vec<Vec<usize>> {
    let n = ring.len();
    let digests: Vec<u64> = ring.iter().map(|m| digest(m)).collect();
    let mut scores: Vec<Vec<(u64, usize)>> = vec![Vec::with_capacity(n); n];
    for i in 0..n {
        for j in i + 1..n {
            let s = mix(digests[i] ^ mix(digests[j]));
            scores[i].push((s, j));
            scores[j].push((s, i));
        }
    }
    scores
        .into_iter()
        .map(|mut row| {
            // The k best, in no order: selected, not sorted (ties, as unlikely as they
            // are, go to the member first in name order).
            let key = |(s, j): &(u64, usize)| (std::cmp::Reverse(*s), *j);
            if row.len() > k {
                row.select_nth_unstable_by_key(k, key);
                row.truncate(k);
            }
            row.into_iter().map(|(_, j)| j).collect()
        })
        .collect()
}

/// The members `me` keeps direct links with, among `members` (`me` included or not):
/// every other member while there are at most `full_mesh_up_to`, else its two ring
/// neighbours, the members it picks, and the members that pick it.
pub fn neighbors(
    members: &BTreeSet<MachineName>,
    me: &MachineName,
    full_mesh_up_to: usize,
) -> BTreeSet<MachineName> {
    if members.len() + usize::from(!members.contains(me)) <= full_mesh_up_to.max(1) {
        return members.iter().filter(|m| *m != me).cloned().collect();
    }
    let mut all = members.clone();
    all.insert(me.clone());
    graph(&all, full_mesh_up_to)
        .remove(me)
        .expect("me is a member")
}

/// Every member's [`neighbors`] among `members`, from one computation of the picks:
/// the links the overlay wants, each listed at both ends.
pub fn graph(
    members: &BTreeSet<MachineName>,
    full_mesh_up_to: usize,
) -> BTreeMap<MachineName, BTreeSet<MachineName>> {
    let ring: Vec<&MachineName> = members.iter().collect();
    let n = ring.len();
    if n <= full_mesh_up_to.max(1) {
        return ring
            .iter()
            .map(|&me| (me.clone(), neighbors(members, me, full_mesh_up_to)))
            .collect();
    }
    let mut links: Vec<BTreeSet<usize>> = (0..n)
        .map(|at| [(at + 1) % n, (at + n - 1) % n].into())
        .collect();
    for (at, picked) in picks_of(&ring, picks(n)).into_iter().enumerate() {
        for other in picked {
            links[at].insert(other);
            links[other].insert(at);
        }
    }
    links
        .into_iter()
        .enumerate()
        .map(|(at, mut out)| {
            out.remove(&at);
            (
                ring[at].clone(),
                out.into_iter().map(|i| ring[i].clone()).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn members(n: usize) -> BTreeSet<MachineName> {
        (1..=n)
            .map(|i| MachineName::new(format!("lab{i:03}.example.com")).unwrap())
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
        for n in [5, 17, 65, 100, 150] {
            let all = members(n);
            let g = graph(&all, 4);
            let log = (n as f64).log2().ceil() as usize;
            let mean = g.values().map(BTreeSet::len).sum::<usize>() as f64 / n as f64;
            assert!(
                mean <= 2.0 * log as f64 + 2.0,
                "n={n}: {mean:.1} links a member on average"
            );
            for (m, ns) in &g {
                assert!(ns.len() <= 4 * log, "{m} has {} links among {n}", ns.len());
                for x in ns {
                    assert!(g[x].contains(m), "{m} → {x} but not back, n={n}");
                }
            }
            let d = diameter(&g).unwrap();
            assert!(d <= 4, "n={n}: diameter {d}");
            assert!(d <= crate::protocol::wire::MAX_HOPS as usize);
        }
    }

    #[test]
    fn a_join_moves_few_links() {
        let mut all = members(99);
        let before = graph(&all, 4);
        all.insert(MachineName::new("lab050x.example.com").unwrap());
        let after = graph(&all, 4);
        let changed = before
            .iter()
            .filter(|(m, ns)| {
                let now: BTreeSet<_> = after[*m]
                    .iter()
                    .filter(|x| x.as_str() != "lab050x.example.com")
                    .collect();
                now != ns.iter().collect()
            })
            .count();
        assert!(
            changed <= 2 * picks(100),
            "a join changed {changed} members' other links"
        );
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
        let mut with_me = all.clone();
        with_me.insert(me.clone());
        assert_eq!(ns, neighbors(&with_me, &me, 4));
    }
}
