//! The cluster's domain, one machine's part of it: no sockets, no files, no runtime
//! (tokio's in-process channels only), so all of it runs on a
//! [`crate::state::MemoryStore`] and an in-memory applier in tests.
//!
//! A [`node::Node`] is one machine: the store and clock ([`core`]), with what an
//! administrator changes ([`admin`]) and the membership ([`membership`], with renaming a member: [`rename`]); the users and
//! their roles ([`users`]) and who may log in ([`auth`], with the delays refusals earn,
//! [`penalties`]); who asks and the refusal they may get ([`caller`]); the checks every write passes — the caller's authority and the
//! writes' validity ([`authorize`]), and the follower's and the change freezes' refusals
//! ([`guard`]); one handler per request kind ([`requests`]); the cluster's identities,
//! rotated, retired and used to check and re-encrypt secrets ([`secrets`]); commit confirmed ([`trial`]); staged rollouts ([`staging`]); and the one
//! post-commit pipeline that hands every result to an [`applier`].
//!
//! May import the pure rooms below it (model, config, schema, resolve, validate, plan,
//! secret, freeze, replica, state) and the protocol's message types; never `agent` or `cli`.

pub mod admin;
pub mod applier;
pub mod auth;
pub mod authorize;
pub mod caller;
pub mod core;
pub mod guard;
pub mod membership;
pub mod node;
pub mod penalties;
pub mod rename;
pub mod requests;
pub mod secrets;
pub mod staging;
pub mod trial;
pub mod users;

pub use auth::Authed;
pub use penalties::refusal_delay;
