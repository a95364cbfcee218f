//! `strata cluster repair MEMBER`: rebuilds this machine's lost or damaged store from a
//! member's copy of the cluster, with its agent stopped (see [`crate::agent::repair`]).

use std::path::Path;

use super::json::RepairJson;

use super::args::Format;
use super::connect::unexpected;
use super::output::Output;
use super::{CliError, ErrorKind, Failure, Outcome};
use crate::agent::repair::{RepairError, rebuild};
use crate::agent::state_dir::{Layout, StateDir};
use crate::cluster::auth::PEER_USER;
use crate::config::agent_kdl::DEFAULT_PORT;
use crate::protocol::{
    BlockingClient, ClientOptions, HostKeyPin, Login, PeerError, Request, Response, split_host_port,
};

/// Repairs the store of the state dir `dir` from the member at `address`, whose host key
/// has `fingerprint`.
pub fn run(
    address: &str,
    fingerprint: &str,
    dir: &Path,
    out: &Output,
) -> Result<Outcome, CliError> {
    let (host, port) = split_host_port(address, DEFAULT_PORT).ok_or_else(|| {
        Failure::new(
            format!("bad member address `{address}`"),
            "write HOST[:PORT]",
        )
    })?;
    // An existing agent's state dir: without its settings and host key this machine
    // cannot come back as itself (StateDir::open would make new ones).
    let layout = Layout::new(dir);
    for (file, what) in [
        (layout.settings(), "its settings"),
        (layout.host_key(), "its host key"),
    ] {
        if !file.exists() {
            return Err(Failure::new(
                format!(
                    "{} is not the state dir of an agent that was a member: {what} ({}) is missing",
                    dir.display(),
                    file.display()
                ),
                "give the state dir of the machine to repair; a machine that lost its host key cannot come back as itself: start its agent afresh and join the cluster again",
            ));
        }
    }
    // Holds the lock: no agent runs on this state dir while its store is replaced.
    let state = StateDir::open(dir, None, None).map_err(|e| match e {
        crate::agent::state_dir::StateDirError::Locked(_) => Failure::refused(
            format!("an agent is running on {}", dir.display()),
            "stop it first: its store is replaced while no agent runs",
        ),
        e => CliError::new(ErrorKind::Invalid, e),
    })?;
    let me = state.settings.machine.clone();
    let options = ClientOptions::new(
        host,
        port,
        HostKeyPin::Fingerprint(fingerprint.trim().to_owned()),
        PEER_USER,
        Login::Key(Box::new(state.host_key.clone())),
    );
    let mut client = BlockingClient::connect(options).map_err(|e| match e {
        PeerError::Login { .. } => Failure::refused(
            format!("{address} does not count {me} as a member: {e}"),
            "repair from a member of this machine's cluster; a machine removed from it cannot be repaired: start its agent afresh (move the store and member.kdl away) and join the cluster again",
        ),
        e => CliError::from(e),
    })?;
    let member = client.info().machine.clone();
    let (cluster, change_sets, digests) = match client.request(Request::Repair)? {
        Response::Replica {
            cluster,
            change_sets,
            digests,
        } => (cluster, change_sets, digests),
        other => return Err(unexpected(other)),
    };
    drop(client);
    let rebuilt = rebuild(&state.layout, &cluster, change_sets, &digests).map_err(|e| {
        let help = match &e {
            RepairError::OtherCluster { .. } => "repair from a member of this machine's cluster",
            RepairError::Mismatch { .. } => {
                "nothing was changed; run it again (the member may have been changing), or repair from another member"
            }
            RepairError::Io(_) => "nothing was changed; check the state dir and its disk",
        };
        Failure::new(e.to_string(), help)
    })?;
    let kept = rebuilt.kept.as_ref().map(|p| p.display().to_string());
    match out.format {
        Format::Json => out.json(&RepairJson {
            repaired: me.to_string(),
            cluster: cluster.to_string(),
            member: member.to_string(),
            change_sets: rebuilt.change_sets,
            entries: rebuilt.entries,
            digests_match: true,
            kept,
        }),
        _ => {
            let mut text = format!(
                "{me}'s store rebuilt from {member} (cluster {cluster}): {} change sets, {} entries, matching {member}'s digests\n",
                rebuilt.change_sets, rebuilt.entries
            );
            if let Some(kept) = kept {
                text.push_str(&format!("the old store is kept at {kept}\n"));
            }
            text.push_str(&format!(
                "start the agent: strata agent --state-dir {}\n",
                dir.display()
            ));
            out.print(&text);
        }
    }
    Ok(Outcome::Ok)
}
