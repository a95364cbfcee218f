//! Joining a cluster (the seed's "Joining an Existing Cluster over SSH", with the admin
//! passphrase or with a pre-shared key): the joiner's agent connects to a member,
//! checks its host key against the fingerprint the operator gave, proves the passphrase
//! (or logs in with its own host key, registered with `prepjoin add`), and sends who it
//! is; the member records it in the membership and answers with the cluster's change
//! sets, which replace the joiner's own state.

use super::Mesh;
use crate::agent::Agent;
use crate::cluster::auth::{Authed, JOIN_USER, Principal};
use crate::cluster::caller::Authority;
use crate::cluster::caller::{Caller, Refusal};
use crate::cluster::membership::{Proof, cluster_name};
use crate::model::{EntryValue, GroupName, Key, Level, Mode};
use crate::protocol::{
    Client, ClientOptions, HostKeyPin, JoinRequest, Login, PeerError, Request, Response, Secret,
    strata_version, version,
};
use crate::state::wall_ms;

/// Where and how to join.
pub struct Target {
    /// The member, `HOST[:PORT]`.
    pub address: String,
    /// Its host-key fingerprint, `SHA256:…`.
    pub fingerprint: String,
    /// The group to join.
    pub group: Option<GroupName>,
    /// The admin passphrase; `None`: the pre-shared host key.
    pub passphrase: Option<Secret>,
}

fn refused(message: impl Into<String>, help: &str) -> Response {
    Response::error(message, Some(help))
}

/// On the joiner: joins the cluster of the member at `target`.
pub async fn join(agent: &Agent, mesh: &Mesh, _caller: &Caller, target: Target) -> Response {
    let me = agent.node.machine().clone();
    // What this machine has: it must be standalone; its machine-only sections stay its own.
    let (sections, replaced) = {
        let core = agent.node.lock_core();
        let live = match core.live() {
            Ok(l) => l,
            Err(e) => return Response::error(e.to_string(), None),
        };
        if let Some(name) = cluster_name(&live) {
            return refused(
                format!("{me} is already in cluster {name}"),
                "a machine joins from standalone; `strata cluster remove` it first",
            );
        }
        let catalogue = agent.node.catalogue();
        let mode = Mode::Machine(me.clone());
        let mut sections = Vec::new();
        let mut replaced = Vec::new();
        for (k, e) in &live {
            let (Key::Section { mode: m, section }, Some(EntryValue::Section(node))) =
                (k, &e.value)
            else {
                continue;
            };
            if *m != mode {
                continue;
            }
            let machine_only = catalogue
                .get(section.as_str())
                .is_some_and(|s| !s.allows(Level::Cluster) && !s.allows(Level::Group));
            if machine_only {
                sections.push(node.clone());
            } else {
                replaced.push(section.to_string());
            }
        }
        (sections, replaced)
    };
    if !target.fingerprint.starts_with("SHA256:") {
        return refused(
            format!("`{}` is not a host-key fingerprint", target.fingerprint),
            "give it as OpenSSH prints it: SHA256:… (`strata agent` prints it at start; `ssh-keygen -lf` shows it)",
        );
    }
    let Some((host, port)) =
        crate::protocol::split_host_port(&target.address, crate::config::agent_kdl::DEFAULT_PORT)
    else {
        return refused(
            format!("`{}` is not HOST[:PORT]", target.address),
            "e.g. lab1.example.com:2222",
        );
    };
    let (user, login) = match &target.passphrase {
        Some(p) => ("admin".to_owned(), Login::Passphrase(p.0.clone())),
        None => (
            JOIN_USER.to_owned(),
            Login::Key(Box::new((*mesh.identity.host_key).clone())),
        ),
    };
    let mut options = ClientOptions::new(
        host,
        port,
        HostKeyPin::Fingerprint(target.fingerprint.clone()),
        user,
        login,
    );
    options.bind = mesh.identity.bind;
    options.connect_timeout = std::time::Duration::from_secs(30);
    let mut client = match Client::connect(options).await {
        Ok(c) => c,
        Err(e) => return connect_failed(&target, e),
    };
    let member = client.info().machine.clone();
    // The member's hello says its version: a joiner of another release stops here, before
    // it asks anything (the member checks the joiner's too, in `admit`).
    let theirs = client.info().version.clone();
    if !version::compatible(&theirs, strata_version()) {
        let (message, help) = version::mismatch(
            &member,
            &theirs,
            &format!("{me} (this machine)"),
            strata_version(),
        );
        tracing::warn!(%member, "join refused: {message}");
        return refused(format!("cannot join through {member}: {message}"), &help);
    }
    let request = JoinRequest {
        machine: me.clone(),
        host_key: mesh.identity.public_key(),
        serial: mesh.identity.serial.clone(),
        peer: mesh.identity.peer_address.clone(),
        group: target.group.clone(),
        machine_sections: sections,
        strata_version: Some(strata_version().to_owned()),
        appliance_version: mesh.identity.appliance_version.clone(),
    };
    let (cluster, change_sets, notes) = match client.request(Request::Join(request)).await {
        Ok(Response::Admitted {
            cluster,
            change_sets,
            notes,
        }) => (cluster, change_sets, notes),
        Ok(Response::Denied { message }) => {
            tracing::warn!(%member, "join refused: {message}");
            return Response::Denied {
                message: format!("{member} refused the join: {message}"),
            };
        }
        Ok(Response::Error { message, help }) => {
            tracing::warn!(%member, "join refused: {message}");
            return Response::Error {
                message: format!("{member} refused the join: {message}"),
                help,
            };
        }
        Ok(other) => {
            return Response::error(format!("{member} answered the join with {other:?}"), None);
        }
        Err(e) => return connect_failed(&target, e),
    };
    drop(client);
    let taken = agent
        .node
        .replace_with(|core| core.take_cluster(change_sets, wall_ms()));
    if let Err(e) = taken {
        return Response::error(
            format!("{member} admitted this machine, but its state could not be taken: {e}"),
            Some("remove it on the member (`strata cluster remove`) and join again"),
        );
    }
    let group = {
        agent
            .node
            .live_under(&[format!("@machine:{me}")])
            .ok()
            .and_then(|l| {
                crate::cluster::membership::membership_of(&l, &me).map(|m| m.group.to_string())
            })
            .unwrap_or_default()
    };
    tracing::info!(%cluster, %member, %group, "joined the cluster");
    Response::Joined {
        cluster,
        member,
        group,
        replaced,
        notes,
    }
}

fn connect_failed(target: &Target, e: PeerError) -> Response {
    let help = match &e {
        PeerError::HostKey { .. } => {
            "check the fingerprint: `strata agent` prints the member's when it starts"
        }
        PeerError::Login { .. } if target.passphrase.is_some() => {
            "the cluster admin passphrase is set with `strata cluster passwd` on a member"
        }
        PeerError::Login { .. } => {
            "register this machine on a member first: `strata cluster prepjoin add` with what `prepjoin print` shows here"
        }
        PeerError::Incompatible { .. } => {
            "machines of a cluster run the same Strata version: upgrade one of them"
        }
        PeerError::Delayed { .. } => {
            "failed passphrases from this machine earned a delay: join again once it has passed"
        }
        _ => "check the member's address and that its agent runs",
    };
    tracing::warn!(address = %target.address, "join failed: {e}");
    Response::error(
        format!("cannot join through {}: {e}", target.address),
        Some(help),
    )
}

/// On the member: admits the joiner (see [`crate::cluster::membership`]) and answers with
/// the cluster's change sets.
pub fn admit(agent: &Agent, who: &Authed, request: &JoinRequest) -> Response {
    let proof = match &who.principal {
        Principal::Joiner(m) => Proof::PreShared(m.clone()),
        Principal::User if who.role.may_administer() => Proof::Passphrase,
        _ => {
            return Response::Denied {
                message: format!(
                    "user `{}` ({}) may not join machines",
                    who.user,
                    who.role.as_str()
                ),
            };
        }
    };
    let caller = Caller {
        user: who.user.clone(),
        authority: Authority::All,
        followed: None,
        break_glass: None,
    };
    let catalogue = agent.node.catalogue();
    let own = agent.mesh.get().map(|m| m.identity.facts());
    let mut notes = Vec::new();
    let response = agent.node.commit(|core| {
        let (cs, n) = core.admit(
            &caller,
            request,
            &proof,
            &catalogue,
            own.as_ref(),
            wall_ms(),
        )?;
        notes = n;
        Ok::<_, Refusal>(Some(cs))
    });
    if !matches!(response, Response::Applied { .. }) {
        return response;
    }
    tracing::info!(joiner = %request.machine, serial = %request.serial, "machine joined");
    let change_sets = match agent.node.change_sets() {
        Ok(c) => c,
        Err(e) => return Response::error(e.to_string(), None),
    };
    let cluster = {
        agent
            .node
            .live_under(&["@cluster".into()])
            .ok()
            .and_then(|l| cluster_name(&l))
            .unwrap_or_default()
    };
    Response::Admitted {
        cluster,
        change_sets,
        notes,
    }
}
