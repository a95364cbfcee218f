//! Talking to agents: a pure frame [`codec`], typed [`message`]s, and a [`connection`]
//! that carries one over the other on any byte stream — in production an SSH channel
//! (the `strata` subsystem of the agent's russh server).

pub mod codec;
pub mod connection;
pub mod message;

pub use codec::FrameCodec;
pub use connection::{Connection, ConnectionError};
pub use message::{HookRun, PROTOCOL, Request, Response, RunReport, SUBSYSTEM};
