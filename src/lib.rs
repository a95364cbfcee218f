//! Strata: centralized management for clusters of appliances, the GitOps way.
//!
//! Operators describe a cluster, its groups and its machines, with per-level overrides,
//! in KDL files under git; Strata validates them, resolves each machine's effective
//! config, and edits them the way AsyncOS's `clusterset` does.
//!
//! # Layout
//! - [`model`]: pure data — levels and modes, canonical section contents.
//! - [`config`]: reading a config repo's files into declarations with spans; diagnostics.
//! - [`schema`]: the section catalogue and checking sections against it.
//! - [`resolve`]: layering into each machine's effective config, with provenance.
//! - [`validate`]: every rule of a config repo, all problems of a run together.
//! - [`xml`]: AsyncOS configuration XML ↔ sections, driven by the schemas' `xml=` mappings.
//! - [`report`]: pure rendering of `show` and `where` output.
//! - [`edit`]: copy, move and delete sections in the KDL files, keeping formatting.
//! - [`mesh`]: frame codec, typed messages, connections over SSH channels; the SSH client
//!   with host-key pinning (async, and a blocking wrapper for the CLI); the `Peer` trait it
//!   implements beside an in-memory twin that answers through an in-process `Service`.
//! - [`plan`]: pure planning: desired entries vs live entries → typed actions, rendering.
//! - [`source`]: desired state from a working tree or a git ref (git objects, no checkout).
//! - [`state`]: the agent's durable store: versioned entries, change sets (redb + memory).
//! - [`agent`]: the daemon: state dir, SSH server, change sets, running config and hooks.
//! - [`cli`]: the command line: arguments, one module per command, output, and the one
//!   error boundary (error kinds → exit codes).
//! - [`atomic_file`]: the one atomic file writer (temporary file, fsync, rename, fsync dir).
//! - [`text`]: counts with their nouns in the right number, for every summary.
//!
//! Not in the library: the synthetic fleet generator and a git helper for tests and
//! benches live in `tests/support/`, included with `#[path]`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod edit;
pub mod mesh;
pub mod model;
pub mod plan;
pub mod report;
pub mod resolve;
pub mod schema;
pub mod source;
pub mod state;
pub mod text;
pub mod validate;
pub mod xml;
