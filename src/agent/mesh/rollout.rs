//! The machine that took a staged change set drives its waves ([`crate::rollout`]): it
//! watches the last released wave's gate — every machine of the wave ran the change set
//! (the one that released its wave) without a failed hook — and, the gate passed and the
//! pause over, releases the next wave; a failed hook, or a machine that did not run it
//! within the gate's timeout (down, cut off), halts the rollout, and with `on-failure
//! "revert"` reverts the change on the waves already done. Each step is a change set, so
//! every machine agrees on how far the rollout got, and a driver that restarts goes on
//! where the history says it is.

use std::sync::Arc;
use std::time::Duration;

use super::Mesh;
use crate::agent::Agent;
use crate::model::MachineName;
use crate::protocol::RunState;
use crate::protocol::wire::{Answer, Query};
use crate::rollout::Progress;
use crate::state::wall_ms;

/// How often the driver looks at its rollouts.
const TICK: Duration = Duration::from_millis(300);

/// How long one look waits for the wave's machines to answer.
const ASK_WITHIN: Duration = Duration::from_secs(2);

/// Starts the driver of this machine's staged change sets.
pub fn spawn(agent: Arc<Agent>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let me = agent.node.machine().clone();
            // Cloned only where there is something to drive: the history's finished
            // rollouts stay in the core's cache.
            let mine: Vec<Progress> = agent.node.rollouts_driven_by(&me);
            if mine.is_empty() {
                continue;
            }
            let driver = agent.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for p in mine {
                    step(&driver, &p);
                }
            })
            .await;
        }
    });
}

/// What the gate of `p`'s last released wave says now.
enum Gate {
    /// Every machine ran it clean.
    Passed,
    /// Not yet: some machine has not run it.
    Waiting(Vec<MachineName>),
    /// A hook failed on a machine.
    Failed(String),
}

fn gate(agent: &Agent, mesh: &Mesh, p: &Progress) -> Gate {
    let me = agent.node.machine();
    let machines = &p.waves[p.released - 1].machines;
    let versions = vec![p.released_by.clone()];
    let mut waiting = Vec::new();
    let others: Vec<MachineName> = machines.iter().filter(|m| *m != me).cloned().collect();
    let states = mesh.ask_all(
        &others,
        &Query::RunStates {
            versions: versions.clone(),
        },
        ASK_WITHIN,
    );
    let failures = mesh.ask_all(
        &others,
        &Query::Failures {
            versions: versions.clone(),
        },
        ASK_WITHIN,
    );
    for m in machines {
        let (state, failed) = if m == me {
            (
                agent
                    .node
                    .run_states(&versions)
                    .ok()
                    .and_then(|s| s.first().copied()),
                agent.node.failed_hooks(&versions).pop().unwrap_or_default(),
            )
        } else {
            let state = match states.get(m) {
                Some(Answer::RunStates { states }) => states.first().copied(),
                _ => None,
            };
            let failed = match failures.get(m) {
                Some(Answer::Failures { failed }) => failed.first().cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            (state, failed)
        };
        if let Some(hook) = failed.first() {
            return Gate::Failed(format!("hook {hook} failed on {m}"));
        }
        if !matches!(state, Some(RunState::Applied { .. })) {
            waiting.push(m.clone());
        }
    }
    if waiting.is_empty() {
        Gate::Passed
    } else {
        Gate::Waiting(waiting)
    }
}

/// One look at rollout `p`: release its next wave, halt it, or wait.
fn step(agent: &Agent, p: &Progress) {
    let Some(mesh) = agent.mesh.get() else {
        return;
    };
    let now = wall_ms();
    let halt = match gate(agent, mesh, p) {
        Gate::Passed if now >= p.released_at_ms.saturating_add(p.pause_ms) => None,
        Gate::Passed => return,
        Gate::Failed(why) => Some(why),
        Gate::Waiting(_) if now < p.released_at_ms.saturating_add(p.gate_timeout_ms) => return,
        Gate::Waiting(late) => {
            let names: Vec<&str> = late.iter().map(MachineName::as_str).collect();
            Some(format!(
                "{} did not run it within {}",
                names.join(", "),
                humantime::format_duration(Duration::from_millis(p.gate_timeout_ms))
            ))
        }
    };
    let revert = halt.is_some() && p.revert_on_failure;
    let answer = agent
        .node
        .commit(|core| core.rollout_step(p, halt.clone(), now));
    match (&halt, &answer) {
        (Some(why), crate::protocol::Response::Applied { .. }) => {
            tracing::warn!(change_set = %crate::model::ChangeSetId::of(&p.version), "rollout halted: {why}");
        }
        (None, crate::protocol::Response::Applied { .. }) => {
            tracing::info!(change_set = %crate::model::ChangeSetId::of(&p.version), wave = p.released + 1, "rollout: next wave released");
        }
        (_, crate::protocol::Response::Unchanged) => {}
        (_, other) => tracing::error!("rollout step refused: {other:?}"),
    }
    if revert {
        let why = format!(
            "revert {}: its rollout halted at wave {}: {}",
            crate::model::ChangeSetId::of(&p.version),
            p.released,
            halt.unwrap_or_default()
        );
        let answer = agent
            .node
            .commit(|core| core.revert_change(&p.version, now, Some(why)));
        if !matches!(
            answer,
            crate::protocol::Response::Applied { .. } | crate::protocol::Response::Unchanged
        ) {
            tracing::error!("cannot revert the halted rollout: {answer:?}");
        }
    }
}
