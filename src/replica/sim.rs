//! A deterministic simulation of anti-entropy among 3–7 machines, each a real
//! [`MemoryStore`] (its `commit` and last-writer-wins `merge`) with its own [`Clock`],
//! skewed by up to ±5 s, and a [`Replica`]. A seeded schedule commits on random machines
//! and pushes each new change set to a random subset of its linked peers (pushes are
//! delayed, reordered and dropped), cuts and restores links, brings a machine back to
//! all its peers at once (their exchanges interleaved, so that it pulls each origin from
//! one of them), and runs exchanges over up links whose messages are reordered and
//! sometimes lost. Then every link is healed and exchanges run until a round moves
//! nothing; every machine must then hold every committed change set and the same live
//! entries, those that last writer wins gives. Some commits are trials (commit
//! confirmed) and some are reverts of a trial their machine holds (its time ran out
//! unconfirmed: several machines may revert the same one), which rank just above what
//! they revert ([`crate::state::precedence`]). One machine's membership is written too,
//! as a repo writes it (another group, the facts it holds kept), as the mesh does (a
//! join, a new host key) and removed, on trial or not (a trial keeps the live facts
//! whatever it carries): every machine must end with the group of the write of greatest
//! precedence and the facts of the greatest stamp ([`crate::state::facts`]).
//!
//! What they must end with is computed from the committed change sets alone
//! ([`oracle`]).
//!
//! `STRATA_SIM_SEED=N` runs the one schedule of seed N; `STRATA_SIM_SEEDS=K` runs K
//! schedules instead of the default.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};

use super::{ChangeSetId, Index, MachineName, Out, Replica, SyncMsg};
use crate::model::{Clock, Confirm, EntryValue, GroupName, Hlc, Key, Membership, Version};
use crate::state::{ChangeSet, MemoryStore, Proposal, Store, Writes, tests::meta};

mod oracle;

const DEFAULT_SCHEDULES: u64 = 2_000;
/// Keys written: few, so that writes collide and last writer wins decides.
const KEYS: usize = 5;
/// Values each key may take.
const VALUES: usize = 3;
/// How far a machine's wall clock may be from true time, either way.
const MAX_SKEW_MS: i64 = 5_000;
/// The chance that a message of an exchange is lost before the healing.
const LOSS: f64 = 0.05;

/// The keys and the values they may take, parsed once for every schedule; and one
/// machine's membership, which a repo write and the mesh both write
/// ([`crate::state::facts`]).
struct Catalogue {
    keys: Vec<Key>,
    values: Vec<Vec<EntryValue>>,
    member: Key,
}

impl Catalogue {
    fn new() -> Catalogue {
        let keys: Vec<Key> = (0..KEYS)
            .map(|k| format!("cluster/s{k}").parse().unwrap())
            .collect();
        let values = keys
            .iter()
            .enumerate()
            .map(|(k, key)| {
                (0..VALUES)
                    .map(|n| crate::config::value_from_text(key, &format!("s{k} {n}")).unwrap())
                    .collect()
            })
            .collect();
        Catalogue {
            keys,
            values,
            member: "@machine:m0".parse().unwrap(),
        }
    }
}

struct Machine {
    name: MachineName,
    store: MemoryStore,
    replica: Replica,
    clock: Clock,
    skew_ms: i64,
}

impl Machine {
    fn wall(&self, now: u64) -> u64 {
        now.saturating_add_signed(self.skew_ms)
    }

    /// A local commit through the store's base check, against the live entries; a
    /// trial's revert if `confirm` says so.
    fn commit(&mut self, writes: Writes, now: u64, confirm: Option<Confirm>) -> ChangeSet {
        let live = self.store.live().unwrap();
        let base = writes
            .keys()
            .map(|k| (k.clone(), live.get(k).map(|e| e.stamp.version.clone())))
            .collect();
        let wall_ms = self.wall(now);
        let version = Version {
            hlc: self.clock.now(wall_ms),
            origin: self.name.clone(),
        };
        let cs = self
            .store
            .commit(Proposal {
                writes,
                base,
                meta: crate::model::ChangeMeta {
                    confirm,
                    ..meta("sim")
                },
                version,
                wall_ms,
                settles: Vec::new(),
            })
            .unwrap();
        assert!(self.replica.insert(&cs.version));
        cs
    }

    /// A change set from a peer: the clock moves past it, the store merges it, the
    /// index records it, as the runtime does. False when it was already held.
    fn receive(&mut self, cs: ChangeSet, now: u64) -> bool {
        self.clock.observe(cs.version.hlc, self.wall(now)).unwrap();
        let version = cs.version.clone();
        let merged = self.store.merge(cs).unwrap();
        assert_eq!(
            merged.new,
            self.replica.insert(&version),
            "index and store agree"
        );
        merged.new
    }

    fn load(&self, ids: &[ChangeSetId]) -> Vec<ChangeSet> {
        let sets = self
            .store
            .change_sets_of(&self.replica.index().versions_of(ids))
            .unwrap();
        assert_eq!(sets.len(), ids.len(), "asked to send what it does not hold");
        sets
    }
}

enum Payload {
    Sync(SyncMsg),
    Bodies(Vec<ChangeSet>),
}

struct Packet {
    from: usize,
    to: usize,
    payload: Payload,
}

/// What one schedule showed.
#[derive(Debug, Default)]
struct Outcome {
    machines: usize,
    committed: usize,
    /// Rounds of exchanges after healing, the last (quiet) one included.
    rounds: usize,
    /// Writes in the conflict log at the end.
    conflicts: usize,
    /// Traffic, schedule and healing together.
    traffic: Traffic,
}

/// What crossed the links.
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    /// [`SyncMsg::Ids`] lists sent: the summaries could not decide.
    ids_lists: usize,
    /// [`SyncMsg::Want`]s sent.
    wants: usize,
    /// [`SyncMsg::Pull`]s sent.
    pulls: usize,
    /// Change sets received that the receiver already held.
    duplicates: usize,
}

struct Sim<'c> {
    rng: StdRng,
    catalogue: &'c Catalogue,
    machines: Vec<Machine>,
    /// `up[a * n + b]`: the link between a and b is up (kept symmetric).
    up: Vec<bool>,
    now: u64,
    /// Pushes in flight, delivered in any order, or lost.
    pushes: Vec<Packet>,
    committed: Vec<ChangeSet>,
    traffic: Traffic,
}

impl<'c> Sim<'c> {
    fn new(seed: u64, catalogue: &'c Catalogue) -> Sim<'c> {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(3..=7);
        let machines = (0..n)
            .map(|i| Machine {
                name: MachineName::new(format!("lab{i}")).unwrap(),
                store: MemoryStore::default(),
                replica: Replica::new(Index::new()),
                clock: Clock::starting_after(Hlc::default()),
                skew_ms: rng.random_range(-MAX_SKEW_MS..=MAX_SKEW_MS),
            })
            .collect();
        Sim {
            rng,
            catalogue,
            machines,
            up: vec![true; n * n],
            now: 1_700_000_000_000,
            pushes: Vec::new(),
            committed: Vec::new(),
            traffic: Traffic::default(),
        }
    }

    fn n(&self) -> usize {
        self.machines.len()
    }

    fn is_up(&self, a: usize, b: usize) -> bool {
        self.up[a * self.n() + b]
    }

    fn set_link(&mut self, a: usize, b: usize, up: bool) {
        let n = self.n();
        self.up[a * n + b] = up;
        self.up[b * n + a] = up;
        if !up {
            for (x, y) in [(a, b), (b, a)] {
                let peer = self.machines[y].name.clone();
                self.machines[x].replica.link_down(&peer);
            }
        }
    }

    /// Two distinct machines.
    fn pair(&mut self) -> (usize, usize) {
        let a = self.rng.random_range(0..self.n());
        let b = (a + self.rng.random_range(1..self.n())) % self.n();
        (a, b)
    }

    fn commit(&mut self) {
        let at = self.rng.random_range(0..self.n());
        let mut writes = Writes::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let k = self.rng.random_range(0..KEYS);
            let value = if self.rng.random_bool(0.25) {
                None
            } else {
                Some(self.catalogue.values[k][self.rng.random_range(0..VALUES)].clone())
            };
            writes.insert(self.catalogue.keys[k].clone(), value);
        }
        if self.rng.random_bool(0.3) {
            let value = self.member_write(at);
            writes.insert(self.catalogue.member.clone(), value);
        }
        // Some are trials (commit confirmed), which a revert may undo later.
        let confirm = self.rng.random_bool(0.4).then_some(Confirm::Trial {
            by_ms: self.now + 1_000,
        });
        let cs = self.machines[at].commit(writes, self.now, confirm);
        self.spread(at, cs);
    }

    /// A write of the membership on machine `at`, from what it holds: its removal; a
    /// repo's (another group, the facts it finds kept); or the mesh's (a join or a new
    /// host key, the rest kept).
    fn member_write(&mut self, at: usize) -> Option<EntryValue> {
        let live = self.machines[at].store.live().unwrap();
        let held = match live
            .get(&self.catalogue.member)
            .and_then(|e| e.value.as_ref())
        {
            Some(EntryValue::Machine(m)) => Some(m.clone()),
            _ => None,
        };
        let mut m = held.unwrap_or_else(|| Membership::declared(GroupName::main(), "m0", None));
        match self.rng.random_range(0..10) {
            0 => return None,
            1..=4 => m.group = GroupName::new(format!("g{}", self.rng.random_range(0..3))).unwrap(),
            _ => {
                let key = self.rng.random_range(0..3);
                m.host_key = Some(format!("ssh-ed25519 K{key}"));
                m.peer = Some(format!("10.0.0.{key}:2222"));
            }
        }
        Some(EntryValue::Machine(m))
    }

    /// A machine reverts a change set it holds, as commit confirmed does when a trial's
    /// time runs out unconfirmed: for each key still at that change set's version there,
    /// the value it replaced. Other machines may revert the same one, concurrently.
    fn revert(&mut self) {
        let at = self.rng.random_range(0..self.n());
        let held = self.machines[at].store.change_sets().unwrap();
        let trials: Vec<&ChangeSet> = held
            .iter()
            .filter(|cs| matches!(cs.meta.confirm, Some(Confirm::Trial { .. })))
            .collect();
        let Some(trial) = trials.choose(&mut self.rng).map(|cs| (*cs).clone()) else {
            return;
        };
        let live = self.machines[at].store.live().unwrap();
        let replaced = trial.supersedes.clone().unwrap_or_default();
        let mut writes = Writes::new();
        // A trial never changes a member's facts (the store keeps the live ones,
        // whatever its membership write carried: `state::facts::stamp`), so each of its
        // writes can be reverted.
        for k in trial.writes.keys() {
            if live
                .get(k)
                .is_some_and(|e| e.stamp.version != trial.version)
            {
                continue;
            }
            let before = replaced.get(k).cloned().flatten().and_then(|v| {
                held.iter()
                    .find(|cs| cs.version == v)
                    .and_then(|cs| cs.writes.get(k).cloned().flatten())
            });
            let now = live.get(k).and_then(|e| e.value.as_ref());
            writes.insert(k.clone(), crate::state::facts::restored(before, now));
        }
        let confirm = Confirm::Reverts {
            version: trial.version.clone(),
        };
        let cs = self.machines[at].commit(writes, self.now, Some(confirm));
        self.spread(at, cs);
    }

    /// Pushes `cs`, committed on `at`, to some of its linked peers, and records it.
    fn spread(&mut self, at: usize, cs: ChangeSet) {
        for to in (0..self.n()).filter(|&to| to != at) {
            if self.is_up(at, to) && self.rng.random_bool(0.7) {
                self.pushes.push(Packet {
                    from: at,
                    to,
                    payload: Payload::Bodies(vec![cs.clone()]),
                });
            }
        }
        self.committed.push(cs);
    }

    /// Delivers one push in flight, picked at random: a reordering. Lost if its link
    /// went down meanwhile.
    fn deliver_push(&mut self) {
        if self.pushes.is_empty() {
            return;
        }
        let p = self
            .pushes
            .swap_remove(self.rng.random_range(0..self.pushes.len()));
        if self.is_up(p.from, p.to) {
            self.deliver(p, &mut Vec::new());
        }
    }

    /// One exchange over the link a–b: both summaries, then every answer, delivered in
    /// random order, each lost with probability `loss`. True when anything beyond the
    /// two summaries was sent.
    fn sync(&mut self, a: usize, b: usize, loss: f64) -> bool {
        self.sync_links(&[(a, b)], loss)
    }

    /// Exchanges over several links at once, their messages interleaved, as when a
    /// machine comes back to all its peers together.
    fn sync_links(&mut self, links: &[(usize, usize)], loss: f64) -> bool {
        let mut queue = Vec::new();
        for &(a, b) in links {
            for (from, to) in [(a, b), (b, a)] {
                let summary = SyncMsg::Summary(self.machines[from].replica.summary());
                queue.push(Packet {
                    from,
                    to,
                    payload: Payload::Sync(summary),
                });
            }
        }
        let summaries = queue.len();
        let mut sent = 0;
        while !queue.is_empty() {
            let p = queue.swap_remove(self.rng.random_range(0..queue.len()));
            sent += 1;
            if loss > 0.0 && self.rng.random_bool(loss) {
                continue;
            }
            self.deliver(p, &mut queue);
        }
        sent > summaries
    }

    /// Hands a packet to its receiver; what it answers goes into `queue`.
    fn deliver(&mut self, p: Packet, queue: &mut Vec<Packet>) {
        let now = self.now;
        let from = self.machines[p.from].name.clone();
        let me = &mut self.machines[p.to];
        match p.payload {
            Payload::Bodies(sets) => {
                for cs in sets {
                    if !me.receive(cs, now) {
                        self.traffic.duplicates += 1;
                    }
                }
            }
            Payload::Sync(msg) => {
                // Handed over as values: the wire encoding is the unit tests' business
                // (their exchange goes through it), and would cost a third of the run.
                for out in me.replica.on_message(&from, &msg) {
                    let payload = match out {
                        Out::Send(m) => {
                            match m {
                                SyncMsg::Ids { .. } => self.traffic.ids_lists += 1,
                                SyncMsg::Want { .. } => self.traffic.wants += 1,
                                SyncMsg::Pull { .. } => self.traffic.pulls += 1,
                                SyncMsg::Summary(_) => {}
                            }
                            Payload::Sync(m)
                        }
                        Out::SendChangeSets(ids) => Payload::Bodies(me.load(&ids)),
                    };
                    queue.push(Packet {
                        from: p.to,
                        to: p.from,
                        payload,
                    });
                }
            }
        }
    }

    fn step(&mut self) {
        self.now += self.rng.random_range(0..300);
        match self.rng.random_range(0..100) {
            0..31 => self.commit(),
            31..35 => self.revert(),
            35..55 => {
                for _ in 0..self.rng.random_range(1..=3) {
                    self.deliver_push();
                }
            }
            55..62 => {
                if !self.pushes.is_empty() {
                    let i = self.rng.random_range(0..self.pushes.len());
                    self.pushes.swap_remove(i);
                }
            }
            62..72 => {
                let (a, b) = self.pair();
                self.set_link(a, b, false);
            }
            72..80 => {
                // A restored link syncs at once, as on reconnect.
                let (a, b) = self.pair();
                if !self.is_up(a, b) {
                    self.set_link(a, b, true);
                    self.sync(a, b, LOSS);
                }
            }
            80..86 => {
                // A machine comes back (restarted, or its partition healed): every link
                // of it comes up at once, and all of them sync together.
                let a = self.rng.random_range(0..self.n());
                let links: Vec<(usize, usize)> =
                    (0..self.n()).filter(|&b| b != a).map(|b| (a, b)).collect();
                for &(a, b) in &links {
                    self.set_link(a, b, true);
                }
                self.sync_links(&links, LOSS);
            }
            _ => {
                // The periodic exchange, on a link that is up.
                let (a, b) = self.pair();
                if self.is_up(a, b) {
                    self.sync(a, b, LOSS);
                }
            }
        }
    }

    /// Every link up, pushes in flight lost, then rounds of exchanges between every
    /// pair (in random order, messages reordered, none lost) until one moves nothing.
    /// With nothing lost and nothing pushed meanwhile, no change set is sent to a
    /// machine that holds it: each gets exactly what it lacks.
    fn heal(&mut self) -> usize {
        let duplicates = self.traffic.duplicates;
        self.up.fill(true);
        self.pushes.clear();
        let n = self.n();
        let mut pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect();
        for round in 1.. {
            pairs.shuffle(&mut self.rng);
            let mut moved = false;
            for &(a, b) in &pairs {
                moved |= self.sync(a, b, 0.0);
            }
            if !moved {
                assert_eq!(self.traffic.duplicates, duplicates, "sent what was held");
                return round;
            }
            assert!(round < 10, "no quiescence after {round} rounds");
        }
        unreachable!()
    }
}

fn run(seed: u64, catalogue: &Catalogue) -> Outcome {
    let mut sim = Sim::new(seed, catalogue);
    for _ in 0..sim.rng.random_range(20..100) {
        sim.step();
    }
    let rounds = sim.heal();
    let conflicts = sim.check();
    assert!(rounds <= 3, "{rounds} rounds to quiesce after healing");
    Outcome {
        machines: sim.n(),
        committed: sim.committed.len(),
        rounds,
        conflicts,
        traffic: sim.traffic,
    }
}

/// The schedules a simulation runs: seed `STRATA_SIM_SEED` alone, else seeds 0 to
/// `STRATA_SIM_SEEDS` (or `default`).
pub(crate) fn schedules(default: u64) -> Vec<u64> {
    match env_u64("STRATA_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("STRATA_SIM_SEEDS").unwrap_or(default)).collect(),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
    )
}

#[test]
fn every_schedule_converges_to_the_same_entries_everywhere() {
    let seeds = schedules(DEFAULT_SCHEDULES);
    let catalogue = Catalogue::new();
    let started = Instant::now();
    let (mut committed, mut machines, mut conflicts) = (0, 0, 0);
    let mut traffic = Traffic::default();
    let mut rounds = [0usize; 4];
    for &seed in &seeds {
        match catch_unwind(AssertUnwindSafe(|| run(seed, &catalogue))) {
            Ok(o) => {
                committed += o.committed;
                machines += o.machines;
                conflicts += o.conflicts;
                rounds[o.rounds.min(3)] += 1;
                traffic.ids_lists += o.traffic.ids_lists;
                traffic.wants += o.traffic.wants;
                traffic.pulls += o.traffic.pulls;
                traffic.duplicates += o.traffic.duplicates;
            }
            Err(panic) => {
                eprintln!(
                    "replica simulation failed with seed {seed}; reproduce with: \
                     STRATA_SIM_SEED={seed} cargo test --lib replica::sim -- --nocapture"
                );
                resume_unwind(panic);
            }
        }
    }
    eprintln!(
        "replica simulation: {} schedules, {machines} machines, {committed} change sets \
         committed ({conflicts} writes lost to concurrent ones, the same conflict log on \
         every machine), rounds to quiesce after healing (quiet round included) 1: {}, 2: {}, \
         3: {}; {} pulls, {} id lists, {} wants, {} duplicate deliveries (all before healing); in {:.2?}",
        seeds.len(),
        rounds[1],
        rounds[2],
        rounds[3],
        traffic.pulls,
        traffic.ids_lists,
        traffic.wants,
        traffic.duplicates,
        started.elapsed()
    );
}
