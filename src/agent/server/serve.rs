//! The framed protocol on one channel: the client's hello comes first (its version is
//! checked before anything else is answered), each request is answered on a blocking
//! thread, at most a few of one user's requests run at once, and every request is
//! tracked from the moment it is read so shutdown can answer it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use russh::Channel;
use russh::server::{Handle, Msg};

use super::InFlight;
use crate::agent::Agent;
use crate::cluster::Authed;
use crate::protocol::{Connection, FrameCodec, PROTOCOL, Request, Response};

/// Requests in progress per user, at most `max` each.
#[derive(Debug)]
pub struct UserSlots {
    max: usize,
    taken: Mutex<HashMap<String, usize>>,
}

/// One request's place in its user's budget, given back when dropped.
pub struct Slot {
    slots: Arc<UserSlots>,
    user: String,
}

impl UserSlots {
    /// At most `max` requests per user.
    pub fn new(max: usize) -> UserSlots {
        UserSlots {
            max: max.max(1),
            taken: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more request of `user`, if they have one left.
    pub fn take(self: &Arc<UserSlots>, user: &str) -> Option<Slot> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let n = taken.entry(user.to_owned()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: Arc::clone(self),
            user: user.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = taken.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                taken.remove(&self.user);
            }
        }
    }
}

/// What a channel's first request is, as far as the version check goes.
#[derive(Debug, PartialEq, Eq)]
enum Greeting {
    /// A hello of this protocol: the channel is open for requests.
    Hello,
    /// A hello of another protocol: answered with both versions, then closed.
    OtherProtocol,
    /// Anything else: the version check comes first, so it is refused and closed.
    Missing,
}

fn greeting(request: &Request) -> Greeting {
    match request {
        Request::Hello { protocol, .. } if *protocol == PROTOCOL => Greeting::Hello,
        Request::Hello { .. } => Greeting::OtherProtocol,
        _ => Greeting::Missing,
    }
}

/// Serves the protocol on one channel until the client closes it. A client that sends
/// garbage is disconnected; one that does not start with a hello of this protocol gets
/// one error and the channel closes.
pub async fn serve(
    agent: Arc<Agent>,
    in_flight: InFlight,
    who: Authed,
    channel: Channel<Msg>,
    handle: Handle,
    peer: SocketAddr,
) {
    // Answers may be large (change sets for a joiner, entries for a plan), and the
    // channel may become a mesh link: both are packed.
    let mut conn: Connection<Response, Request> =
        Connection::new(channel.into_stream(), FrameCodec::default()).packing();
    // Set once a request is answered after shutdown began: the channel then stays until
    // the client hangs up (or shutdown's grace ends), so the answer is not cut off.
    let mut answered_late = false;
    let mut greeted = false;
    // The Strata version the client's hello said: a peer's, checked when it asks for a
    // mesh link.
    let mut client_version = String::new();
    loop {
        // An idle channel ends at shutdown; one mid-request is answered first.
        let msg = tokio::select! {
            msg = conn.recv() => msg,
            () = in_flight.stopping.cancelled(), if !answered_late => None,
        };
        let Some(msg) = msg else {
            // Whatever was answered is written out before the channel closes.
            conn.finish().await;
            return;
        };
        // Counted before the check: shutdown either sees this request or refuses it.
        let token = in_flight.requests.token();
        let request = match msg {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%peer, user = %who.user, "disconnecting a client that sent garbage: {e}");
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ProtocolError,
                        format!("protocol error: {e}"),
                        String::new(),
                    )
                    .await;
                return;
            }
        };
        let refusal = if in_flight.stopping.is_cancelled() {
            Some(Response::error(
                "the agent is shutting down; nothing was done",
                Some("try again once it is back"),
            ))
        } else if !greeted {
            match greeting(&request) {
                Greeting::Hello => None,
                // The answer names both versions.
                Greeting::OtherProtocol => Some(agent.handle(&who, request.clone())),
                Greeting::Missing => Some(Response::error(
                    "the first request must be a hello with the protocol version",
                    Some("use the strata client of the same version as the agent"),
                )),
            }
        } else {
            None
        };
        if let Some(response) = refusal {
            let _ = conn.send(&response).await;
            conn.finish().await;
            return;
        }
        greeted = true;
        if let Request::Hello { version, .. } = &request {
            client_version.clone_from(version);
        }
        if let Request::PeerLink { machine } = &request {
            match peer_link(&agent, &who, machine, &client_version) {
                Ok(member) => {
                    if conn.send(&Response::PeerLinked).await.is_err() {
                        return;
                    }
                    drop(token);
                    if let Some(mesh) = agent.mesh.get() {
                        mesh.adopt(member, conn.retype());
                    }
                    return;
                }
                Err(refusal) => {
                    tracing::warn!(%peer, %machine, "mesh link refused: {refusal}");
                    let _ = conn.send(&Response::Denied { message: refusal }).await;
                    conn.finish().await;
                    return;
                }
            }
        }
        let Some(slot) = in_flight.slots.take(&who.user) else {
            let busy = Response::error(
                format!("user `{}` has too many requests in progress", who.user),
                Some(
                    "wait for them to finish; the agent's max-requests-per-user setting sets the limit",
                ),
            );
            if conn.send(&busy).await.is_err() {
                return;
            }
            continue;
        };
        let (agent, who2) = (agent.clone(), who.clone());
        let response = tokio::task::spawn_blocking(move || agent.handle(&who2, request))
            .await
            .unwrap_or_else(|e| Response::error(format!("internal error: {e}"), None));
        drop(slot);
        let sent = conn.send(&response).await;
        drop(response);
        crate::agent::memory::release_soon();
        answered_late = in_flight.stopping.is_cancelled();
        drop(token);
        if sent.is_err() {
            return;
        }
    }
}

/// Whether `who` may turn this channel into the mesh link of `machine`, which said it
/// runs Strata `version`, and the member the link is to: only a member logged in with
/// its own host key, of this machine's release ([`crate::protocol::version`]), to a
/// running mesh. A member is its key: one that asks under a name no member has any
/// more was renamed while it was away, and learns it over this link
/// ([`crate::cluster::rename`]).
fn peer_link(
    agent: &Agent,
    who: &Authed,
    machine: &crate::model::MachineName,
    version: &str,
) -> Result<crate::model::MachineName, String> {
    let member = match &who.principal {
        crate::cluster::auth::Principal::Peer(m) if m == machine => m.clone(),
        crate::cluster::auth::Principal::Peer(m) => {
            let still = agent
                .node
                .entries(&[crate::model::Key::Machine(machine.clone())])
                .map_err(|e| e.to_string())?;
            if still.values().any(|e| e.value.is_some()) {
                return Err(format!(
                    "{m} logged in with its host key but asks for a link as {machine}"
                ));
            }
            tracing::info!(was = %machine, now = %m, "a renamed member links under its old name; it learns the new one");
            m.clone()
        }
        _ => {
            return Err(format!(
                "user `{}` is no member: only members open mesh links",
                who.user
            ));
        }
    };
    let ours = crate::protocol::strata_version();
    if !crate::protocol::version::compatible(version, ours) {
        let me = agent.node.machine();
        let (message, _) =
            crate::protocol::version::mismatch(machine.as_str(), version, me.as_str(), ours);
        return Err(message);
    }
    if agent.mesh.get().is_none() {
        return Err("this agent runs no mesh".into());
    }
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_answered_before_the_version_check() {
        let hello = |protocol| Request::Hello {
            protocol,
            version: "x".into(),
        };
        assert_eq!(greeting(&hello(PROTOCOL)), Greeting::Hello);
        assert_eq!(greeting(&hello(PROTOCOL + 1)), Greeting::OtherProtocol);
        assert_eq!(greeting(&Request::Log), Greeting::Missing);
        assert_eq!(greeting(&Request::Live), Greeting::Missing);
    }

    #[test]
    fn a_user_s_requests_in_progress_are_bounded_and_given_back() {
        let slots = Arc::new(UserSlots::new(2));
        let a = slots.take("ada").unwrap();
        let _b = slots.take("ada").unwrap();
        assert!(slots.take("ada").is_none());
        assert!(slots.take("bob").is_some(), "other users are not affected");
        drop(a);
        assert!(slots.take("ada").is_some());
    }
}
