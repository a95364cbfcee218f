//! Questions members ask one another for `check` and `apply` (and for the config repo's
//! objects, [`super::git_fetch`]): the asking side (a request
//! handler on a blocking thread asks through the runtime and waits, bounded) and the
//! answering side (read from this machine's store, off the runtime).
//!
//! A question travels as [`PeerMsg::Ask`] with an id the runtime picks, routed like any
//! envelope; the answer comes back as [`PeerMsg::Answer`] with that id and goes to the
//! waiting handler. An answer that comes too late finds nobody waiting and is dropped;
//! a question to a machine that cannot be reached simply gets no answer in time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Mesh;
use super::runtime::{Event, Runtime};
use crate::agent::Agent;
use crate::model::MachineName;
use crate::protocol::consistency::{MachineState, stamps_of};
use crate::protocol::wire::{Answer, Envelope, MAX_HOPS, PeerMsg, Query};
use crate::replica::Summary;

/// Questions asked and not answered yet: id → who waits.
#[derive(Default)]
pub struct Pending {
    next: u64,
    waiting: BTreeMap<u64, (Instant, oneshot::Sender<Answer>)>,
}

/// How long an unanswered question is remembered.
const FORGET_AFTER: Duration = Duration::from_secs(120);

impl Pending {
    /// Records a question; returns its id.
    pub fn ask(&mut self, reply: oneshot::Sender<Answer>) -> u64 {
        self.next += 1;
        self.waiting.insert(self.next, (Instant::now(), reply));
        self.next
    }

    /// Hands an answer to whoever waits for it.
    pub fn answered(&mut self, id: u64, answer: Answer) {
        if let Some((_, reply)) = self.waiting.remove(&id) {
            let _ = reply.send(answer);
        }
    }

    /// Forgets questions nobody waits for any more.
    pub fn expire(&mut self) {
        self.waiting
            .retain(|_, (at, reply)| !reply.is_closed() && at.elapsed() < FORGET_AFTER);
    }
}

/// This machine's answer to `query`; `summary` is what the runtime's index says it
/// holds. Blocking: reads the store.
pub fn answer(agent: &Agent, query: Query, summary: Summary) -> Answer {
    let failed = |e: &dyn std::fmt::Display| Answer::Failed {
        message: e.to_string(),
    };
    match query {
        Query::State => match agent.node.local_edits() {
            Ok(local_edits) => Answer::State(MachineState {
                summary,
                local_edits,
                store_failure: agent.node.store_failure(),
            }),
            Err(e) => failed(&e),
        },
        Query::Stamps => match agent.node.live() {
            Ok(live) => Answer::Stamps {
                stamps: stamps_of(&live),
            },
            Err(e) => failed(&e),
        },
        Query::Entry { key } => match agent.node.live_under(&[key.to_string()]) {
            Ok(live) => Answer::Entry {
                entry: live.get(&key).cloned().map(Box::new),
            },
            Err(e) => failed(&e),
        },
        Query::Failures { versions } => Answer::Failures {
            failed: agent.node.failed_hooks(&versions),
        },
        Query::RunStates { versions } => match agent.node.run_states(&versions) {
            Ok(states) => Answer::RunStates { states },
            Err(e) => failed(&e),
        },
        Query::GitPack {
            commit,
            have,
            offset,
        } => super::git_pack::answer(agent, &commit, &have, offset),
    }
}

impl Runtime {
    /// Sends `query` to `to` (or answers it here, when `to` is this machine).
    pub(super) fn ask(&mut self, to: MachineName, query: Query, reply: oneshot::Sender<Answer>) {
        if to == self.me.machine {
            let agent = self.agent.clone();
            let summary = self.replica.summary();
            tokio::task::spawn_blocking(move || {
                let _ = reply.send(answer(&agent, query, summary));
            });
        } else {
            let id = self.asks.ask(reply);
            self.route(self.envelope(&to, PeerMsg::Ask { id, query }));
        }
    }

    /// Answers a peer's question off the runtime; the answer goes back as an envelope.
    pub(super) fn on_ask(&mut self, from: MachineName, id: u64, query: Query) {
        let agent = self.agent.clone();
        let summary = self.replica.summary();
        let tx = self.events.clone();
        let me = self.me.machine.clone();
        tokio::task::spawn_blocking(move || {
            let answer = Box::new(answer(&agent, query, summary));
            let _ = tx.send(Event::Send(Envelope {
                from: me,
                to: from,
                ttl: MAX_HOPS,
                body: PeerMsg::Answer { id, answer },
            }));
        });
    }
}

impl Mesh {
    /// Asks each of `machines` `query` through the mesh and waits at most `timeout` for
    /// all answers; a machine that did not answer in time is absent from the result.
    /// Blocking: call off the runtime.
    pub fn ask_all(
        &self,
        machines: &[MachineName],
        query: &Query,
        timeout: Duration,
    ) -> BTreeMap<MachineName, Answer> {
        let waits: Vec<(MachineName, oneshot::Receiver<Answer>)> = machines
            .iter()
            .filter_map(|m| {
                let (tx, rx) = oneshot::channel();
                self.events
                    .send(Event::Ask {
                        to: m.clone(),
                        query: query.clone(),
                        reply: tx,
                    })
                    .ok()?;
                Some((m.clone(), rx))
            })
            .collect();
        self.rt.block_on(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut out = BTreeMap::new();
            for (m, rx) in waits {
                if let Ok(Ok(a)) = tokio::time::timeout_at(deadline, rx).await {
                    out.insert(m, a);
                }
            }
            out
        })
    }
}
