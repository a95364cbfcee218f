//! The version rule at `cluster reconnect` (the seed: "you can only connect a machine to a
//! cluster that is running the same version"): run on the machine itself, it is refused
//! while a connected member runs another Strata release; run on a member for another
//! machine, while that machine does. Links between releases never form anyway
//! ([`super::link::dial`]); this says so before the membership changes.
//!
//! The versions compared are the ones the machines say now, asked over a peer login
//! (their hello), and the recorded ones only for those that do not answer: a machine
//! disconnected for its upgrade has stale records of the others, who were upgraded too
//! while it could not hear of it.

use std::time::Duration;

use super::Mesh;
use crate::agent::Agent;
use crate::cluster::membership::{members, membership_of};
use crate::model::{MachineName, Membership};
use crate::protocol::{Response, strata_version, version};

/// How long a member may take to say its version.
const ASK_WITHIN: Duration = Duration::from_secs(3);

/// Refuses `cluster reconnect machine` when it would join machines of different Strata
/// releases; `Ok` otherwise. Blocking: call off the runtime.
pub fn check(agent: &Agent, mesh: &Mesh, machine: &MachineName) -> Result<(), Response> {
    let me = agent.node.machine().clone();
    let live = agent
        .node
        .live_under(&["@machine:".into()])
        .map_err(|e| Response::error(e.to_string(), None))?;
    // On itself: the connected members; elsewhere: the machine reconnected.
    let compared: Vec<(MachineName, Membership)> = if *machine == me {
        members(&live)
            .filter(|(m, info)| **m != me && info.joined() && !info.disconnected)
            .map(|(m, info)| (m.clone(), info.clone()))
            .collect()
    } else {
        membership_of(&live, machine)
            .filter(|info| info.joined())
            .map(|info| vec![(machine.clone(), info.clone())])
            .unwrap_or_default()
    };
    let said = mesh.rt.block_on(ask_versions(mesh, &compared));
    let ours = strata_version();
    let differ: Vec<(MachineName, String)> = compared
        .into_iter()
        .zip(said)
        .filter_map(|((m, info), now)| Some((m, now.or(info.strata_version)?)))
        .filter(|(_, v)| !version::compatible(v, ours))
        .collect();
    let Some((first, theirs)) = differ.first() else {
        return Ok(());
    };
    let (mut message, help) = version::mismatch(
        first.as_str(),
        theirs,
        &format!("{me} (this machine)"),
        ours,
    );
    for (m, v) in &differ[1..] {
        message.push_str(&format!("; {m} runs {v}"));
    }
    tracing::warn!(%machine, "reconnect refused: {message}");
    Err(Response::error(
        format!("{machine} is not reconnected: {message}"),
        Some(&help),
    ))
}

/// The Strata version each of `machines` says now (`None`: it did not answer in time),
/// asked side by side.
async fn ask_versions(mesh: &Mesh, machines: &[(MachineName, Membership)]) -> Vec<Option<String>> {
    let asks = machines.iter().map(|(m, info)| async move {
        let key = russh::keys::PublicKey::from_openssh(info.host_key.as_deref()?).ok()?;
        let client = super::link::connect(&mesh.identity, m, info.peer_address(), key, ASK_WITHIN)
            .await
            .ok()?;
        Some(client.info().version.clone())
    });
    futures::future::join_all(asks).await
}
