//! Talking to another machine's agent as a [`Peer`]: one request, one response. Two
//! implementations: the SSH [`Client`](super::Client), and [`MemoryPeer`], an in-memory
//! twin that answers through an in-process [`Service`] (an agent), so that what runs on
//! peers (replication) can be tested without sockets. The twin's link can be cut (the
//! peer is unreachable), or made to lose answers (the peer went away mid-request).
//!
//! [`PeerError`] tells apart the failures a caller handles differently: the agent could
//! not be reached, its host key or our login was refused, it spoke something else than
//! this protocol — or the connection was lost after the request left, when whether it
//! took effect is unknown.

use std::future::Future;
use std::sync::{Arc, Mutex};

use super::message::{Request, Response};

/// Why a peer gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// No SSH session could be set up: the address does not resolve, nothing listens,
    /// the network is down, the key exchange failed.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The agent's host key is not the pinned one; nothing was sent to it.
    #[error("refusing to talk to {addr}: {reason}")]
    HostKey {
        /// `host:port`.
        addr: String,
        /// Which key was seen and which was expected.
        reason: String,
    },
    /// The agent refused the login (unknown key, wrong passphrase, locked user).
    #[error("the agent at {addr} refused user `{user}`: wrong key or passphrase")]
    Login {
        /// `host:port`.
        addr: String,
        /// The user we logged in as.
        user: String,
    },
    /// The agent did not check the passphrase: failed logins from this address earned a
    /// delay that has not passed (or its checks are all taken). Not an unreachable agent.
    #[error("the agent at {addr} did not log in user `{user}`: {notice}")]
    Delayed {
        /// `host:port`.
        addr: String,
        /// The user we logged in as.
        user: String,
        /// The agent's words ("login delayed after failed attempts; retry in 4 s").
        notice: String,
        /// The seconds to wait before trying again.
        retry_in: u64,
    },
    /// The connection ended after the request was sent and before its answer came:
    /// whether the request took effect is unknown.
    #[error(
        "lost the connection to {addr} before it answered ({reason}): whether the request took effect is unknown"
    )]
    Lost {
        /// `host:port`.
        addr: String,
        /// How the connection ended.
        reason: String,
    },
    /// The other end does not speak this protocol: no `strata` subsystem, a malformed
    /// message, an answer that is not one of the protocol's.
    #[error("{addr} does not speak Strata's protocol: {reason}")]
    Protocol {
        /// `host:port`.
        addr: String,
        /// What was wrong.
        reason: String,
    },
    /// The agent speaks another protocol revision (another Strata version).
    #[error("the agent at {addr} cannot talk to this client: {reason}")]
    Incompatible {
        /// `host:port`.
        addr: String,
        /// Both revisions, as the agent or the client tells them.
        reason: String,
    },
}

impl PeerError {
    /// Whether the request may have taken effect although no answer came.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, PeerError::Lost { .. })
    }
}

/// Another machine's agent, reached somehow. One request at a time: each request is
/// answered before the next is sent.
pub trait Peer: Send {
    /// Sends `request` and waits for its answer. A [`PeerError::Lost`] means the request
    /// may or may not have taken effect.
    fn request(
        &mut self,
        request: Request,
    ) -> impl Future<Output = Result<Response, PeerError>> + Send;
}

/// What answers requests in-process: the agent, seen from a [`MemoryPeer`].
pub trait Service: Send + Sync + 'static {
    /// Who is asking, as the service's authentication established it.
    type Caller: Clone + Send + Sync + 'static;

    /// Answers one request. Blocking: it may commit to disk and run hooks, so callers
    /// run it on a blocking thread.
    fn call(&self, who: &Self::Caller, request: Request) -> Response;
}

/// The state of a [`MemoryPeer`]'s link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Link {
    /// Requests are delivered and answered.
    #[default]
    Up,
    /// The peer cannot be reached: requests fail with [`PeerError::Connect`] and are
    /// not delivered.
    Down,
    /// Requests are delivered and acted on, but their answers are lost (the peer went
    /// away mid-request).
    LosesAnswers,
}

/// A handle that sets a [`MemoryPeer`]'s [`Link`] from outside (a test's fault
/// injection).
#[derive(Debug, Clone, Default)]
pub struct LinkSwitch(Arc<Mutex<Link>>);

impl LinkSwitch {
    /// Sets the link's state for the requests that follow.
    pub fn set(&self, link: Link) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = link;
    }

    /// The link's state.
    pub fn get(&self) -> Link {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The in-memory twin of the SSH client: requests go through the same JSON encoding as
/// on the wire, to a [`Service`] running in this process, as `who`.
pub struct MemoryPeer<S: Service> {
    name: String,
    service: Arc<S>,
    who: S::Caller,
    link: LinkSwitch,
}

impl<S: Service> MemoryPeer<S> {
    /// A peer named `name` (in errors) answering through `service` as `who`.
    pub fn new(name: impl Into<String>, service: Arc<S>, who: S::Caller) -> MemoryPeer<S> {
        MemoryPeer {
            name: name.into(),
            service,
            who,
            link: LinkSwitch::default(),
        }
    }

    /// The switch that cuts or restores this peer's link.
    pub fn link(&self) -> LinkSwitch {
        self.link.clone()
    }

    fn protocol(&self, e: serde_json::Error) -> PeerError {
        PeerError::Protocol {
            addr: self.name.clone(),
            reason: e.to_string(),
        }
    }
}

impl<S: Service> Peer for MemoryPeer<S> {
    async fn request(&mut self, request: Request) -> Result<Response, PeerError> {
        let lost = |reason: &str| PeerError::Lost {
            addr: self.name.clone(),
            reason: reason.to_owned(),
        };
        // Through the wire encoding, so what cannot cross the wire cannot cross here.
        let bytes = serde_json::to_vec(&request).map_err(|e| self.protocol(e))?;
        let request: Request = serde_json::from_slice(&bytes).map_err(|e| self.protocol(e))?;
        if self.link.get() == Link::Down {
            return Err(PeerError::Connect {
                addr: self.name.clone(),
                reason: "the link is down".into(),
            });
        }
        let (service, who) = (self.service.clone(), self.who.clone());
        let response = tokio::task::spawn_blocking(move || service.call(&who, request))
            .await
            .map_err(|e| lost(&format!("the service failed: {e}")))?;
        if self.link.get() != Link::Up {
            return Err(lost("the answer was lost"));
        }
        let bytes = serde_json::to_vec(&response).map_err(|e| self.protocol(e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.protocol(e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the cluster creations it is asked for; answers everything else with an
    /// error naming the caller.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Service for Counter {
        type Caller = String;
        fn call(&self, who: &String, request: Request) -> Response {
            match request {
                Request::ClusterCreate { name } => {
                    self.0.fetch_add(1, Ordering::SeqCst);
                    Response::error(format!("{who} created {name}"), None)
                }
                _ => Response::error(format!("{who}: not here"), None),
            }
        }
    }

    fn create() -> Request {
        Request::ClusterCreate {
            name: "americas".into(),
        }
    }

    /// Code written against the trait, as replication will be.
    async fn ask(peer: &mut impl Peer) -> Result<Response, PeerError> {
        peer.request(create()).await
    }

    #[tokio::test]
    async fn a_memory_peer_answers_through_its_service_as_its_caller() {
        let service = Arc::new(Counter::default());
        let mut peer = MemoryPeer::new("lab2", service.clone(), "ada".to_owned());
        match ask(&mut peer).await.unwrap() {
            Response::Error { message, .. } => assert_eq!(message, "ada created americas"),
            other => panic!("{other:?}"),
        }
        assert_eq!(service.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_cut_link_delivers_nothing_and_a_lost_answer_leaves_the_outcome_unknown() {
        let service = Arc::new(Counter::default());
        let mut peer = MemoryPeer::new("lab2", service.clone(), "ada".to_owned());
        let link = peer.link();

        link.set(Link::Down);
        let err = ask(&mut peer).await.unwrap_err();
        assert!(
            matches!(err, PeerError::Connect { ref addr, .. } if addr == "lab2"),
            "{err}"
        );
        assert!(!err.outcome_unknown());
        assert_eq!(service.0.load(Ordering::SeqCst), 0, "nothing was delivered");

        link.set(Link::LosesAnswers);
        let err = ask(&mut peer).await.unwrap_err();
        assert!(err.outcome_unknown(), "{err}");
        assert!(err.to_string().contains("unknown"), "{err}");
        assert_eq!(
            service.0.load(Ordering::SeqCst),
            1,
            "it took effect all the same"
        );

        link.set(Link::Up);
        assert!(ask(&mut peer).await.is_ok());
        assert_eq!(service.0.load(Ordering::SeqCst), 2);
    }
}
