//! The peer mesh as the agent runs it: [`runtime`] (the event loop: links, pings,
//! routes), [`sync`] (spreading, merging and resyncing change sets), [`dial`] (dialing
//! and backoff), [`members`] (the peer set), [`alert`], [`link`] (one link's tasks,
//! dialing one peer), [`join`] (joining a cluster through a member, and admitting a
//! joiner), [`reconnect`] (the version rule at reconnect), and the requests that need
//! the mesh: `cluster join`, `list`, `connstatus`, `prepjoin print`, `disconnect`,
//! `reconnect`, `remove`, and [`clustercheck`] (`check`, `check --resolve`, apply's
//! per-machine report, asking members through [`query`]; [`hostnames`], whether members'
//! hostnames resolve here); and [`git_fetch`], which keeps the config repo
//! at the commit the cluster runs, fetching its objects from members.

mod alert;
pub mod clustercheck;
mod dial;
pub mod git_fetch;
mod git_pack;
mod hostnames;
pub mod join;
pub mod link;
mod link_state;
mod members;
pub mod query;
mod reconnect;
mod rollout;
pub mod runtime;
mod snapshot;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;

use sha2::Digest;
use tokio::sync::{mpsc, oneshot};

use self::link::Identity;
use self::runtime::Event;
use self::snapshot::Snapshot;
use super::Agent;
use crate::cluster::auth::{Authed, Principal};
use crate::cluster::caller::Authority;
use crate::cluster::caller::{Caller, Refusal};
use crate::cluster::membership::{cluster_name, flattened, membership_of};
use crate::model::{EntryValue, Key, MachineName};
use crate::protocol::status::{ClusterListing, GroupListing, MachineListing, PendingEntry};
use crate::protocol::wire::Envelope;
use crate::protocol::{Connection, Request, Response};
use crate::state::{Source, wall_ms};

/// The running mesh of an agent.
pub struct Mesh {
    events: mpsc::UnboundedSender<Event>,
    /// Who this machine is to its peers.
    pub identity: Identity,
    rt: tokio::runtime::Handle,
}

/// The serial number of a machine with host key `key`, when its settings give none: the
/// first 12 hex digits of the key's SHA-256, stable and unique as a serial must be.
pub fn derived_serial(key: &russh::keys::PublicKey) -> String {
    let bytes = key.to_bytes().unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    digest[..6]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>()
}

/// The serial number this agent presents.
pub fn serial_of(agent: &Agent) -> String {
    agent
        .state
        .settings
        .serial
        .clone()
        .unwrap_or_else(|| derived_serial(agent.state.host_key.public_key()))
}

/// Starts the mesh of `agent`, whose SSH server listens on `bound`. Call inside the
/// agent's tokio runtime; once only.
pub fn start(agent: &Arc<Agent>, bound: SocketAddr) {
    let settings = &agent.state.settings;
    let peer_address = match &settings.address {
        Some(a) if crate::protocol::split_host_port(a, 0).is_some_and(|(_, p)| p != 0) => a.clone(),
        Some(a) => format!("{a}:{}", bound.port()),
        None if bound.ip().is_unspecified() => format!("{}:{}", settings.machine, bound.port()),
        None => bound.to_string(),
    };
    // A cluster created here records the address peers dial, as a joiner announces it:
    // the same form for every member (`cluster list` shows host:port for each).
    agent.node.lock_core().address = peer_address.clone();
    let identity = Identity {
        machine: agent.node.machine().clone(),
        host_key: Arc::new(agent.state.host_key.clone()),
        serial: serial_of(agent),
        peer_address,
        bind: (!bound.ip().is_unspecified()).then_some(bound.ip()),
        appliance_version: settings.appliance_version.clone(),
    };
    let events = runtime::start(agent.clone(), identity.clone());
    let mesh = Mesh {
        events,
        identity,
        rt: tokio::runtime::Handle::current(),
    };
    if agent.mesh.set(mesh).is_err() {
        tracing::error!("the mesh was started twice");
        return;
    }
    git_fetch::spawn(agent.clone());
    rollout::spawn(agent.clone());
}

impl Mesh {
    /// The mesh as this member sees it now; `None` when its event loop has ended.
    /// Blocking: call off the runtime.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Event::Query(tx)).ok()?;
        rx.blocking_recv().ok()
    }

    /// Ends the direct link to `peer`, if there is one, because of what it sent.
    fn drop_link(&self, peer: &MachineName, why: String) {
        let _ = self.events.send(Event::DropLink {
            peer: peer.clone(),
            why,
        });
    }

    /// Takes over `conn`, a channel a member opened with `PeerLink`.
    pub fn adopt(&self, peer: MachineName, conn: Connection<Envelope, Envelope>) {
        let _ = self.events.send(Event::Adopt {
            dialer: peer.clone(),
            peer,
            conn,
            session: None,
        });
    }
}

fn admin(who: &Authed) -> Result<Caller, Response> {
    if who.principal == Principal::User && who.role.may_administer() {
        Ok(Caller {
            user: who.user.clone(),
            authority: Authority::All,
            followed: None,
            break_glass: None,
            origin_kind: crate::model::OriginKind::Claimed,
        })
    } else {
        Err(Response::Denied {
            message: format!(
                "user `{}` ({}) may not change the cluster's membership",
                who.user,
                who.role.as_str()
            ),
        })
    }
}

/// Answers the requests that need the mesh; `None` for the others. Blocking: call on a
/// blocking thread.
pub fn handle(agent: &Agent, who: &Authed, request: &Request) -> Option<Response> {
    // Machines logged in with their host keys may do one thing each.
    match (&who.principal, request) {
        (_, Request::Hello { .. }) => return None,
        (Principal::Peer(m), Request::Repair) => {
            return Some(crate::agent::repair::answer(agent, m));
        }
        (_, Request::Repair) => {
            return Some(Response::Denied {
                message: "only a member, logged in with its own host key, may take a copy of the cluster to repair its store".into(),
            });
        }
        (Principal::Peer(_), _) => {
            return Some(Response::Denied {
                message: "a peer login may only open a mesh link".into(),
            });
        }
        (Principal::Joiner(_), Request::Join(_)) | (Principal::User | Principal::Follower, _) => {}
        (Principal::Joiner(_), _) => {
            return Some(Response::Denied {
                message: "a pre-shared join login may only join".into(),
            });
        }
    }
    let mesh = agent.mesh.get();
    let answer = match request {
        Request::PrepjoinPrint => Response::Prepjoin(PendingEntry {
            host: agent.node.machine().to_string(),
            serial: serial_of(agent),
            key: agent
                .state
                .host_key
                .public_key()
                .to_openssh()
                .unwrap_or_default(),
        }),
        Request::ClusterList => match mesh.and_then(Mesh::snapshot) {
            Some(s) => list(agent, &s),
            None => not_running(),
        },
        Request::ConnStatus => match mesh.and_then(Mesh::snapshot) {
            Some(s) => Response::ConnStatus(s.status),
            None => not_running(),
        },
        Request::ClusterJoin {
            address,
            fingerprint,
            group,
            passphrase,
        } => match (admin(who), mesh) {
            (Err(denied), _) => denied,
            (Ok(_), None) => not_running(),
            (Ok(caller), Some(mesh)) => mesh.rt.block_on(join::join(
                agent,
                mesh,
                &caller,
                join::Target {
                    address: address.clone(),
                    fingerprint: fingerprint.clone(),
                    group: group.clone(),
                    passphrase: passphrase.clone(),
                },
            )),
        },
        Request::Join(req) => join::admit(agent, who, req),
        Request::Disconnect { machine } | Request::Reconnect { machine } => match admin(who) {
            Err(denied) => denied,
            Ok(caller) => {
                let disconnect = matches!(request, Request::Disconnect { .. });
                let versions = match (disconnect, mesh) {
                    (false, Some(mesh)) => reconnect::check(agent, mesh, machine),
                    _ => Ok(()),
                };
                match versions {
                    Err(refused) => refused,
                    Ok(()) => agent.node.commit(|core| {
                        core.set_disconnected(&caller, machine, disconnect, wall_ms())
                    }),
                }
            }
        },
        Request::Remove { machine } => match admin(who) {
            Err(denied) => denied,
            Ok(caller) => remove(agent, &caller, machine),
        },
        Request::RenameMachine {
            machine,
            to,
            address,
        } => match admin(who) {
            Err(denied) => denied,
            Ok(caller) => agent.node.commit(|core| {
                core.rename_member(&caller, machine, to, address.as_deref(), wall_ms())
            }),
        },
        Request::Check => match mesh {
            Some(mesh) => clustercheck::check(agent, mesh),
            None => not_running(),
        },
        Request::CheckResolve { key, host } => match (mesh, who.role.may_apply()) {
            (_, false) => Response::Denied {
                message: format!(
                    "user `{}` ({}) may not apply changes",
                    who.user,
                    who.role.as_str()
                ),
            },
            (None, true) => not_running(),
            (Some(mesh), true) => {
                let caller = Caller::with_role(who.user.clone(), who.role);
                clustercheck::resolve(agent, mesh, &caller, key, host)
            }
        },
        Request::Propagation { version, wait_ms } => match mesh {
            Some(mesh) => clustercheck::propagation(
                agent,
                mesh,
                version,
                std::time::Duration::from_millis(*wait_ms),
            ),
            None => not_running(),
        },
        _ => return None,
    };
    Some(answer)
}

fn not_running() -> Response {
    Response::error(
        "this agent runs no mesh",
        Some("the mesh starts with the agent's SSH server (`strata agent`)"),
    )
}

/// `remove M`: removes M everywhere; on M itself, the machine then leaves (keeping its
/// flattened config), after its peers were sent the removal.
fn remove(agent: &Agent, caller: &Caller, machine: &MachineName) -> Response {
    let me = agent.node.machine().clone();
    let flat = if *machine == me {
        let core = agent.node.lock_core();
        match core.live() {
            Ok(live) => Some(flattened(&live, &me, &agent.node.catalogue())),
            Err(e) => return Response::error(e.to_string(), None),
        }
    } else {
        None
    };
    let response = agent
        .node
        .commit(|core| core.remove_member(caller, machine, wall_ms()).map(Some));
    if let (Some(flat), Response::Applied { .. }) = (flat, &response) {
        // The peers were sent the removal as it was committed; give the links a moment
        // to write it before this machine stops being a member.
        std::thread::sleep(std::time::Duration::from_millis(500));
        if let Err(e) = agent
            .node
            .replace_with(|core| core.leave(flat, wall_ms()).map(|_| ()))
        {
            return Response::error(format!("removed, but cannot leave: {e}"), None);
        }
        tracing::info!("this machine left the cluster; its config stays as standalone settings");
    }
    response
}

/// `cluster list`: groups with their machines, how this machine reaches each.
fn list(agent: &Agent, snap: &Snapshot) -> Response {
    let live = match agent.node.live_under(&["@".into()]) {
        Ok(l) => l,
        Err(e) => return Response::error(e.to_string(), None),
    };
    let me = agent.node.machine();
    // Once a repo drives the cluster (an apply from git happened), a member that no repo
    // declares is unmanaged — as `check --repo` calls it.
    let from_repo = match agent.node.change_sets() {
        Ok(sets) => sets
            .iter()
            .any(|cs| matches!(cs.meta.source, Source::Git { .. })),
        Err(e) => return Response::error(e.to_string(), None),
    };
    let mut groups: Vec<GroupListing> = live
        .iter()
        .filter_map(|(k, e)| match (k, &e.value) {
            (Key::Group(g), Some(EntryValue::Group)) => Some(GroupListing {
                name: g.to_string(),
                machines: Vec::new(),
            }),
            _ => None,
        })
        .collect();
    for (m, entry) in &live {
        let (Key::Machine(m), Some(EntryValue::Machine(info))) = (m, &entry.value) else {
            continue;
        };
        let reach = clustercheck::reach_of(me, m, info, membership_of(&live, me), snap);
        let unmanaged = from_repo && info.joined() && !info.declared;
        let listing = MachineListing {
            name: m.to_string(),
            address: info.peer_address().to_owned(),
            serial: info.serial.clone(),
            reach,
            unmanaged,
            store_failure: snap.store_failures.get(m).cloned(),
            strata_version: info.strata_version.clone(),
            appliance_version: info.appliance_version.clone(),
        };
        if let Some(g) = groups.iter_mut().find(|g| g.name == info.group.as_str()) {
            g.machines.push(listing);
        }
    }
    Response::ClusterList(ClusterListing {
        cluster: cluster_name(&live),
        machine: me.to_string(),
        groups,
    })
}

impl From<Refusal> for Response {
    fn from(r: Refusal) -> Response {
        match r {
            Refusal::Denied(message) => Response::Denied { message },
            Refusal::Invalid { message, help } => Response::Error { message, help },
            Refusal::Commit(e) => Response::error(e.to_string(), Some("nothing was written")),
        }
    }
}
