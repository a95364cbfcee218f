//! Strata: centralized management for clusters of appliances, the GitOps way.
//!
//! Operators describe a cluster, its groups and its machines, with per-level overrides,
//! in KDL files under git; Strata validates them, resolves each machine's effective
//! config, and edits them the way AsyncOS's `clusterset` does.
//!
//! # Layout
//! - [`model`]: pure data — validated names, levels and modes, canonical section
//!   contents, and what the store holds: keys, typed entry values, versions (HLC + origin),
//!   change-set ids and provenance, in the one encoding store and wire share.
//! - [`config`]: reading a config repo's files into declarations with spans; diagnostics.
//! - [`schema`]: the section catalogue (built-in, chosen with `builtin-sections`, plus a
//!   repo's own schemas, or rebuilt from a store's entries) and checking sections.
//! - [`resolve`]: the one layering engine — a parsed repo (with spans) or store entries,
//!   the catalogue passed in — into each machine's effective config, with provenance.
//! - [`validate`]: every rule of a config repo, all problems of a run together.
//! - [`xml`]: AsyncOS configuration XML ↔ sections, driven by the schemas' `xml=` mappings.
//! - [`report`]: pure rendering of `show` and `where` output.
//! - [`secret`]: secrets in a repo: age encryption to the cluster's recipients, the
//!   cluster's identities, and how a secret shows where it is not needed (`<secret …>`).
//! - [`edit`]: copy, move and delete sections in the KDL files, keeping formatting.
//! - [`freeze`]: change-freeze windows, pure: which one is open at a given time.
//! - [`mesh`]: frame codec, typed messages, connections over SSH channels; the SSH client
//!   with host-key pinning (async, and a blocking wrapper for the CLI); the `Peer` trait it
//!   implements beside an in-memory twin that answers through an in-process `Service`.
//! - [`plan`]: pure planning: desired entries vs live entries → typed actions, rendering;
//!   machines' effective changes resolved with the catalogue on each side.
//! - [`source`]: desired state from a working tree or a git ref (git objects, no checkout).
//! - [`replica`]: anti-entropy, pure: the index of the change sets a machine holds, its
//!   compact summary, and the exchange by which two peers send each other exactly what
//!   the other lacks.
//! - [`state`]: the durable store: versioned entries, change sets; a base-checked
//!   `commit` and a last-writer-wins `merge` (redb, and its in-memory twin).
//! - [`agent`]: the daemon: state dir, SSH server (`run(listener, shutdown)`, answering
//!   in-flight requests before it stops), and a node generic over its store and its
//!   applier (running-config files and hooks, or an in-memory twin), with one module per
//!   request kind, authentication on its own, the checks every write passes, and one
//!   post-commit pipeline for every writer.
//! - [`cli`]: the command line: arguments, one module per command, output, and the one
//!   error boundary (error kinds → exit codes).
//! - [`atomic_file`]: the one atomic file writer (temporary file, fsync, rename, fsync dir).
//! - [`paths`]: paths made absolute where they are read (command line, `agent.kdl`).
//! - [`text`]: counts with their nouns in the right number, for every summary.
//!
//! Not in the library: the synthetic fleet generator and a git helper for tests and
//! benches live in `tests/support/`, included with `#[path]`.
// One exception, with its reasons: `agent::memory` asks glibc for freed pages back.
#![deny(unsafe_code)]

pub mod agent;
pub mod atomic_file;
pub mod cli;
pub mod config;
pub mod edit;
pub mod freeze;
pub mod mesh;
pub mod model;
pub mod paths;
pub mod plan;
pub mod replica;
pub mod report;
pub mod resolve;
pub mod schema;
pub mod secret;
pub mod source;
pub mod state;
pub mod text;
pub mod validate;
pub mod xml;
