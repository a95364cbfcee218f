//! The member's side of `strata check`, `check --resolve` and apply's per-machine
//! report: it asks every reachable member (itself included) through the mesh and puts
//! the answers together. Blocking: runs on the request's blocking thread.
//!
//! Check: every reachable member sends its state (a summary of the change sets it holds,
//! and its hand-edited running-config files). While summaries differ, the check asks
//! again a few times a little later, so that a change still spreading is not reported;
//! if they still differ, the members that answered send the stamps of every entry and
//! the report names each entry whose version differs, with who wrote each version,
//! where and when.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Mesh;
use super::snapshot::Snapshot;
use crate::agent::Agent;
use crate::cluster::caller::Caller;
use crate::cluster::membership::cluster_name;
use crate::model::{Key, MachineName, Membership};
use crate::plan::Origin;
use crate::protocol::consistency::{
    CheckReport, CheckWarning, MachineCheck, MachineState, Stamps, inconsistencies, members_of,
    resolution_warnings, unresolved, version_warnings,
};
use crate::protocol::status::Reach;
use crate::protocol::wire::{Answer, Query};
use crate::protocol::{Response, RunState};
use crate::state::{Live, Source, Version, conflicts, wall_ms};

/// How long a member waits for the answers of one round of questions.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// How many times differing summaries are asked for again before they count.
const SETTLE_ROUNDS: usize = 4;

/// The pause between those rounds.
const SETTLE_PAUSE: Duration = Duration::from_millis(250);

/// How each member is reached from this one (what `cluster list` shows too).
pub fn reach_of(
    me: &MachineName,
    machine: &MachineName,
    info: &Membership,
    mine: Option<&Membership>,
    snap: &Snapshot,
) -> Reach {
    if machine == me {
        Reach::Local
    } else if !info.joined() {
        Reach::Expected
    } else if info.disconnected || mine.is_some_and(|m| m.disconnected) {
        Reach::Disconnected
    } else if snap.direct.contains(machine) {
        Reach::Direct
    } else if snap.routes.contains_key(machine) {
        Reach::Routed
    } else {
        Reach::Unreachable
    }
}

/// `strata check`.
pub fn check(agent: &Agent, mesh: &Mesh) -> Response {
    match run_check(agent, mesh) {
        Ok(report) => Response::Check(Box::new(report)),
        Err(message) => Response::error(message, None),
    }
}

fn run_check(agent: &Agent, mesh: &Mesh) -> Result<CheckReport, String> {
    let me = agent.node.machine().clone();
    let snap = mesh.snapshot().ok_or("the mesh is not running")?;
    let live = agent.node.live().map_err(|e| e.to_string())?;
    let mine = snap.members.get(&me);
    let mut machines: BTreeMap<MachineName, MachineCheck> = snap
        .members
        .iter()
        .map(|(m, info)| {
            let reach = reach_of(&me, m, info, mine, &snap);
            (m.clone(), blank(m, reach))
        })
        .collect();
    machines
        .entry(me.clone())
        .or_insert_with(|| blank(&me, Reach::Local));
    let reachable: Vec<MachineName> = machines
        .values()
        .filter(|m| matches!(m.reach, Reach::Local | Reach::Direct | Reach::Routed))
        .map(|m| m.machine.clone())
        .collect();

    // States, asked again while they differ (a change may still be on its way).
    let mut states = states(mesh, &reachable);
    for _ in 0..SETTLE_ROUNDS {
        if agree(&states) {
            break;
        }
        std::thread::sleep(SETTLE_PAUSE);
        states = states_again(mesh, &reachable, states);
    }
    for (m, state) in &states {
        if let Some(check) = machines.get_mut(m) {
            check.answered = true;
            check.change_sets = Some(state.summary.origins.values().map(|o| o.count).sum());
            check.local_edits = state.local_edits.clone();
            check.store_failure = state.store_failure.clone();
        }
    }
    let inconsistent = if agree(&states) {
        Vec::new()
    } else {
        let answered: Vec<MachineName> = states.keys().cloned().collect();
        let stamps: BTreeMap<MachineName, Stamps> = mesh
            .ask_all(&answered, &Query::Stamps, ANSWER_WITHIN)
            .into_iter()
            .filter_map(|(m, a)| match a {
                Answer::Stamps { stamps } => Some((m, stamps)),
                _ => None,
            })
            .collect();
        inconsistencies(&stamps)
    };
    let history = agent.node.change_sets().map_err(|e| e.to_string())?;
    let lost = unresolved(conflicts(&history), &history, &members_of(&live));
    let warnings = warnings(&me, &snap.members);
    Ok(CheckReport {
        cluster: cluster_name(&live),
        checked_from: me,
        machines: machines.into_values().collect(),
        inconsistent,
        conflicts: lost,
        warnings,
    })
}

/// What a check says beside its findings: mixed appliance versions, and the members'
/// hostnames that do not resolve on this member.
fn warnings(me: &MachineName, members: &BTreeMap<MachineName, Membership>) -> Vec<CheckWarning> {
    let mut out = version_warnings(members);
    out.extend(resolution_warnings(
        me,
        &super::hostnames::unresolved(members, super::hostnames::RESOLVE_WITHIN),
    ));
    out
}

fn blank(machine: &MachineName, reach: Reach) -> MachineCheck {
    MachineCheck {
        machine: machine.clone(),
        reach,
        answered: false,
        change_sets: None,
        local_edits: Vec::new(),
        store_failure: None,
    }
}

fn states(mesh: &Mesh, machines: &[MachineName]) -> BTreeMap<MachineName, MachineState> {
    mesh.ask_all(machines, &Query::State, ANSWER_WITHIN)
        .into_iter()
        .filter_map(|(m, a)| match a {
            Answer::State(s) => Some((m, s)),
            _ => None,
        })
        .collect()
}

/// Asks again; a machine that answered before and not now keeps its earlier answer.
fn states_again(
    mesh: &Mesh,
    machines: &[MachineName],
    mut before: BTreeMap<MachineName, MachineState>,
) -> BTreeMap<MachineName, MachineState> {
    before.extend(states(mesh, machines));
    before
}

fn agree(states: &BTreeMap<MachineName, MachineState>) -> bool {
    let mut summaries = states.values().map(|s| &s.summary);
    let first = summaries.next();
    summaries.all(|s| Some(s) == first)
}

/// `check --resolve KEY --use HOST`: HOST's version of the entry, committed here as a
/// new change set, so that it wins on every machine.
pub fn resolve(
    agent: &Agent,
    mesh: &Mesh,
    caller: &Caller,
    key: &Key,
    host: &MachineName,
) -> Response {
    let answers = mesh.ask_all(
        std::slice::from_ref(host),
        &Query::Entry { key: key.clone() },
        ANSWER_WITHIN,
    );
    let theirs = match answers.into_values().next() {
        Some(Answer::Entry { entry }) => entry,
        Some(Answer::Failed { message }) => {
            return Response::error(format!("{host} could not answer: {message}"), None);
        }
        _ => {
            return Response::error(
                format!("{host} did not answer"),
                Some("check that it is a reachable member (`strata cluster list`)"),
            );
        }
    };
    let ours: Live = match agent.node.live_under(&[key.to_string()]) {
        Ok(l) => l,
        Err(e) => return Response::error(e.to_string(), None),
    };
    let value = theirs.and_then(|e| e.value);
    let base = ours.get(key).map(|e| e.stamp.version.clone());
    // The lost writes of this entry that check lists now are settled by this one.
    let membership = match agent.node.live_under(&["@machine:".into()]) {
        Ok(l) => l,
        Err(e) => return Response::error(e.to_string(), None),
    };
    let settles: Vec<Version> = match agent.node.change_sets() {
        Ok(history) => unresolved(conflicts(&history), &history, &members_of(&membership))
            .into_iter()
            .filter(|l| l.key == *key)
            .map(|l| l.lost.version)
            .collect(),
        Err(e) => return Response::error(e.to_string(), None),
    };
    let origin = Origin {
        source: Source::Cli,
        author: caller.user.clone(),
        message: format!("check --resolve {key} --use {host}"),
    };
    agent.node.commit(|core| {
        core.apply_settling(
            caller,
            [(key.clone(), value)].into(),
            [(key.clone(), base)].into(),
            &origin,
            wall_ms(),
            settles,
        )
    })
}

/// Where change set `version` stands on every member, waiting up to `wait` for the
/// reachable ones to have applied it.
pub fn propagation(agent: &Agent, mesh: &Mesh, version: &Version, wait: Duration) -> Response {
    let me = agent.node.machine().clone();
    let Some(snap) = mesh.snapshot() else {
        return Response::error("the mesh is not running", None);
    };
    let mine = snap.members.get(&me);
    let mut reach: BTreeMap<MachineName, Reach> = snap
        .members
        .iter()
        .map(|(m, info)| (m.clone(), reach_of(&me, m, info, mine, &snap)))
        .filter(|(_, r)| *r != Reach::Expected)
        .collect();
    reach.entry(me.clone()).or_insert(Reach::Local);
    let deadline = Instant::now() + wait;
    let mut states: BTreeMap<MachineName, RunState> = BTreeMap::new();
    loop {
        let waiting: Vec<MachineName> = reach
            .iter()
            .filter(|(m, r)| {
                matches!(r, Reach::Local | Reach::Direct | Reach::Routed)
                    && !states.get(*m).is_some_and(|s| s.settled())
            })
            .map(|(m, _)| m.clone())
            .collect();
        if waiting.is_empty() {
            break;
        }
        let answers = mesh.ask_all(
            &waiting,
            &Query::RunStates {
                versions: vec![version.clone()],
            },
            ANSWER_WITHIN
                .min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(200)),
        );
        for (m, a) in answers {
            if let Answer::RunStates { states: s } = a
                && let Some(state) = s.first()
            {
                states.insert(m, *state);
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Response::Propagation {
        change_set: crate::state::ChangeSetId::of(version),
        machines: reach
            .into_iter()
            .map(|(m, r)| crate::protocol::consistency::MachinePropagation {
                state: states.get(&m).copied(),
                machine: m,
                reach: r,
            })
            .collect(),
    }
}
