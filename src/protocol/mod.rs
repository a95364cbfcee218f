//! Talking to agents: a pure frame [`codec`], typed [`message`]s, and a [`connection`]
//! that carries one over the other on any byte stream — in production an SSH channel
//! (the `strata` subsystem of the agent's russh server). On top: the SSH [`client`]
//! with host-key [`pin`]ning and keys signed by the user's [`ssh_agent`], the
//! [`login_delay`] notice an agent answers an unchecked login with, and the [`peer`]
//! abstraction it implements beside an in-memory twin.
//! Which Strata versions may share a cluster: [`version`].

pub mod client;
pub mod codec;
pub mod connection;
pub mod consistency;
pub mod link_state;
pub mod login_delay;
pub mod message;
pub mod overlay;
#[cfg(test)]
mod overlay_sim;
pub mod pack;
pub mod peer;
pub mod pin;
pub mod run;
pub mod ssh_agent;
pub mod status;
pub mod sync_status;
pub mod table;
pub mod version;
pub mod wire;

pub use client::{
    AgentInfo, BlockingClient, CONNECT_TIMEOUT, Client, ClientOptions, Login, split_host_port,
};
pub use codec::FrameCodec;
pub use connection::{Connection, ConnectionError};
pub use message::{
    JoinRequest, PROTOCOL, RecipientInfo, Request, Response, RolloutAction, SUBSYSTEM, Secret,
    Shown,
};
pub use peer::{Link, LinkSwitch, MemoryPeer, Peer, PeerError, Service};
pub use pin::HostKeyPin;
pub use run::{EditKind, HookRun, LocalEdit, RunReport, RunState};
pub use version::strata_version;
