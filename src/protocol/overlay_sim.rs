//! The overlay's link state in simulation: N members' [`Table`]s in overlay mode over an
//! in-memory network, with seeded, reproducible schedules of cut and restored links
//! (partitions), members killed and restarted with nothing held (churn, a restarted
//! member's wall clock sometimes behind its last announcement), and announcements
//! delivered after random delays or lost with their link. Links go up and down as the
//! schedule says (the runtime closes a quiet link after [`super::table::DOWN_AFTER`]
//! intervals; [`Table`]'s own tests cover that); each member floods as the runtime does:
//! everything it holds over a new link, its own announcement when its links change, and
//! each new announcement on to its other neighbours.
//!
//! Checked at quiet points (faults paused for longer than any flood takes) and after the
//! final heal: every live member routes to exactly the members of its side of the
//! partition, each first hop over a live direct link, so a cut-off or dead member is
//! unreachable (and alerted) everywhere within one flood of its links going down.
//!
//! `STRATA_SIM_SEED=N` runs the one schedule of seed N; `STRATA_SIM_SEEDS=K` runs K.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::link_state::{Lsa, Received};
use super::overlay;
use super::table::Table;
use crate::model::MachineName;

const DEFAULT_SCHEDULES: u64 = 50;

thread_local! {
    /// Announcements sent, over every schedule run on this thread.
    static SENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
const INTERVAL_MS: u64 = 100;
const STEP_MS: u64 = 10;

struct Sim {
    rng: StdRng,
    names: Vec<MachineName>,
    neighbors: Vec<BTreeSet<usize>>,
    tables: Vec<Table>,
    alive: Vec<bool>,
    /// Edges cut, as (smaller, larger).
    cut: BTreeSet<(usize, usize)>,
    /// What each member takes for up (its table's direct links).
    up: Vec<BTreeSet<usize>>,
    /// Announcements in flight: (due, seq) → (from, to, lsas).
    queue: BinaryHeap<Reverse<(u64, u64, usize, usize)>>,
    payloads: BTreeMap<u64, Vec<Lsa>>,
    next: u64,
    now: u64,
    /// Each member's wall clock, ahead of (or behind) the simulation's.
    wall_skew: Vec<i64>,
    /// The schedule changed a link or a member since the links were last synced.
    dirty: bool,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(6..=24);
        let names: Vec<MachineName> = (0..n)
            .map(|i| MachineName::new(format!("m{i:02}.example.com")).unwrap())
            .collect();
        let all: BTreeSet<MachineName> = names.iter().cloned().collect();
        let up_to = 4;
        let index = |m: &MachineName| names.iter().position(|x| x == m).unwrap();
        let neighbors = names
            .iter()
            .map(|me| {
                overlay::neighbors(&all, me, up_to)
                    .iter()
                    .map(index)
                    .collect()
            })
            .collect();
        let mut sim = Sim {
            rng,
            tables: Vec::new(),
            alive: vec![true; n],
            cut: BTreeSet::new(),
            up: vec![BTreeSet::new(); n],
            queue: BinaryHeap::new(),
            payloads: BTreeMap::new(),
            next: 0,
            now: 1_000,
            wall_skew: vec![0; n],
            dirty: true,
            names,
            neighbors,
        };
        sim.tables = (0..n).map(|i| sim.fresh_table(i)).collect();
        sim
    }

    fn fresh_table(&self, i: usize) -> Table {
        let mut t = Table::new(self.names[i].clone(), INTERVAL_MS);
        t.set_peers(self.names.iter().cloned());
        let ns = self.neighbors[i]
            .iter()
            .map(|j| self.names[*j].clone())
            .collect();
        t.set_overlay(Some(ns));
        t
    }

    fn wall(&self, i: usize) -> u64 {
        (1_700_000_000_000i64 + self.now as i64 + self.wall_skew[i]) as u64
    }

    fn edge_up(&self, a: usize, b: usize) -> bool {
        self.alive[a]
            && self.alive[b]
            && self.neighbors[a].contains(&b)
            && !self.cut.contains(&(a.min(b), a.max(b)))
    }

    fn send(&mut self, from: usize, to: usize, lsas: Vec<Lsa>) {
        if lsas.is_empty() {
            return;
        }
        SENT.with(|c| c.set(c.get() + lsas.len() as u64));
        self.next += 1;
        let due = self.now + self.rng.random_range(1..=20);
        self.queue.push(Reverse((due, self.next, from, to)));
        self.payloads.insert(self.next, lsas);
    }

    fn flood(&mut self, from: usize, lsas: Vec<Lsa>, except: Option<usize>) {
        let to: Vec<usize> = self.up[from]
            .iter()
            .copied()
            .filter(|j| Some(*j) != except)
            .collect();
        for j in to {
            self.send(from, j, lsas.clone());
        }
    }

    fn announce(&mut self, i: usize) {
        let wall = self.wall(i);
        if let Some(lsa) = self.tables[i].originate(self.now, wall) {
            self.flood(i, vec![lsa], None);
        }
    }

    /// Links follow the schedule's state; each change is what the runtime sees as a link
    /// opened or closed.
    fn sync_links(&mut self) {
        let n = self.names.len();
        for i in 0..n {
            if !self.alive[i] {
                continue;
            }
            let want: BTreeSet<usize> = self.neighbors[i]
                .iter()
                .copied()
                .filter(|j| self.edge_up(i, *j))
                .collect();
            let opened: Vec<usize> = want.difference(&self.up[i]).copied().collect();
            let closed: Vec<usize> = self.up[i].difference(&want).copied().collect();
            for j in &closed {
                self.tables[i].link_down(&self.names[*j]);
            }
            for j in &opened {
                self.tables[i].link_up(&self.names[*j], self.now);
            }
            self.up[i] = want;
            for j in opened {
                let all = self.tables[i].lsas();
                self.send(i, j, all);
            }
            // Pings keep live links heard.
            for j in self.up[i].clone() {
                self.tables[i].heard(&self.names[j], self.now);
            }
            self.announce(i);
        }
    }

    fn deliver(&mut self) {
        while let Some(Reverse((due, id, from, to))) = self.queue.peek().copied() {
            if due > self.now {
                break;
            }
            self.queue.pop();
            let lsas = self.payloads.remove(&id).unwrap();
            // Lost with its link.
            if !self.edge_up(from, to) || !self.up[to].contains(&from) {
                continue;
            }
            let mut onward = Vec::new();
            let mut back = Vec::new();
            let mut own = None;
            for lsa in lsas {
                match self.tables[to].receive_lsa(lsa.clone()) {
                    Received::New => onward.push(lsa),
                    Received::Own(mine) => own = Some(mine),
                    Received::Older(held) => back.push(held),
                    Received::Old => {}
                }
            }
            self.flood(to, onward, Some(from));
            self.send(to, from, back);
            if let Some(mine) = own {
                self.flood(to, vec![mine], None);
            }
        }
    }

    fn step(&mut self) {
        self.now += STEP_MS;
        // Links change only with the schedule; once an interval they are heard (pings).
        if self.dirty || self.now.is_multiple_of(INTERVAL_MS) {
            self.dirty = false;
            self.sync_links();
        }
        self.deliver();
    }

    fn fault(&mut self) {
        self.dirty = true;
        let n = self.names.len();
        match self.rng.random_range(0..10) {
            0..=3 => {
                let a = self.rng.random_range(0..n);
                if let Some(&b) = self.neighbors[a]
                    .iter()
                    .nth(self.rng.random_range(0..self.neighbors[a].len()))
                {
                    self.cut.insert((a.min(b), a.max(b)));
                }
            }
            4..=5 => {
                if let Some(&e) = self
                    .cut
                    .iter()
                    .nth(self.rng.random_range(0..self.cut.len().max(1)))
                {
                    self.cut.remove(&e);
                }
            }
            6 => {
                let a = self.rng.random_range(0..n);
                if self.alive.iter().filter(|x| **x).count() > 2 {
                    self.alive[a] = false;
                    self.up[a].clear();
                }
            }
            7 => {
                if let Some(a) = (0..n).find(|i| !self.alive[*i]) {
                    self.restart(a);
                }
            }
            _ => {}
        }
    }

    fn restart(&mut self, a: usize) {
        self.dirty = true;
        self.alive[a] = true;
        self.up[a].clear();
        self.tables[a] = self.fresh_table(a);
        // Sometimes its clock is behind what it announced before it died.
        self.wall_skew[a] = if self.rng.random_bool(0.3) { -5_000 } else { 0 };
    }

    /// The members `i` can reach over live links.
    fn component(&self, i: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([i]);
        let mut queue = VecDeque::from([i]);
        while let Some(x) = queue.pop_front() {
            for &y in &self.neighbors[x] {
                if self.edge_up(x, y) && seen.insert(y) {
                    queue.push_back(y);
                }
            }
        }
        seen
    }

    fn check(&self, seed: u64, when: &str) {
        for i in (0..self.names.len()).filter(|i| self.alive[*i]) {
            let routes = self.tables[i].routes(self.now);
            let want: BTreeSet<&MachineName> = self
                .component(i)
                .into_iter()
                .filter(|j| *j != i)
                .map(|j| &self.names[j])
                .collect();
            let got: BTreeSet<&MachineName> = routes.keys().collect();
            assert_eq!(
                got, want,
                "seed {seed}, {when}: {} routes to {got:?}, can reach {want:?}",
                self.names[i]
            );
            for hop in routes.values() {
                let j = self.names.iter().position(|x| x == hop).unwrap();
                assert!(
                    self.edge_up(i, j),
                    "seed {seed}, {when}: {} routes via {hop}, no live link",
                    self.names[i]
                );
            }
        }
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed);
    for _ in 0..30 {
        sim.step();
    }
    sim.check(seed, "formed");
    for round in 0..6 {
        for _ in 0..40 {
            if sim.rng.random_bool(0.3) {
                sim.fault();
            }
            sim.step();
        }
        // Quiet: longer than any flood (diameter × 20 ms).
        for _ in 0..20 {
            sim.step();
        }
        sim.check(seed, &format!("quiet point {round}"));
    }
    sim.cut.clear();
    sim.dirty = true;
    for a in 0..sim.names.len() {
        if !sim.alive[a] {
            sim.restart(a);
        }
    }
    for _ in 0..30 {
        sim.step();
    }
    sim.check(seed, "healed");
}

#[test]
fn every_schedule_routes_each_member_to_exactly_its_side() {
    let seeds = crate::replica::sim::schedules(DEFAULT_SCHEDULES);
    let started = std::time::Instant::now();
    for &seed in &seeds {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(seed))) {
            eprintln!(
                "overlay simulation failed with seed {seed}; reproduce with: \
                 STRATA_SIM_SEED={seed} cargo test --lib protocol::overlay_sim -- --nocapture"
            );
            resume_unwind(panic);
        }
    }
    eprintln!(
        "overlay simulation: {} schedules, {} announcements sent, in {:.2?}",
        seeds.len(),
        SENT.with(std::cell::Cell::get),
        started.elapsed()
    );
}
