//! Strata: centralized management for clusters of appliances, the GitOps way.
//!
//! Operators describe a cluster, its groups and its machines, with per-level overrides,
//! in KDL files under git; Strata validates them, resolves each machine's effective
//! config, and edits them the way AsyncOS's `clusterset` does.
//!
//! # Layout
//! Rooms from the bottom floor up; each imports only rooms on floors below its own,
//! listed before it (`tests/it/layout.rs` checks it, from the source).
//! - [`model`]: pure data — validated names, levels and modes, canonical section
//!   contents, and what the store holds: keys, typed entry values, versions (HLC + origin),
//!   change-set ids and provenance, in the one encoding store and wire share. Imports
//!   nothing of Strata; may not import any other room.
//! - [`paths`]: paths made absolute where they are read (command line, `agent.kdl`).
//!   Imports nothing of Strata.
//! - [`text`]: counts with their nouns in the right number, for every summary. Imports
//!   nothing of Strata.
//! - [`config`]: reading Strata's KDL into declarations with spans — a config repo's files,
//!   and an agent's own `agent.kdl` — and diagnostics.
//!   May not import schema or anything above it.
//! - [`freeze`]: change-freeze windows, pure: which one is open at a given time. May not
//!   import config or anything above it.
//! - [`drift_ignore`]: drift-ignore rules, pure: which differences from the repo a rule
//!   in force at a given time covers. May not import config or anything above it.
//! - [`atomic_file`]: the one atomic file writer (temporary file, fsync, rename, fsync
//!   dir). May not import config or anything above it.
//! - [`state`]: the durable store: versioned entries, change sets; a base-checked
//!   `commit` and a last-writer-wins `merge` (redb, and its in-memory twin). May not
//!   import schema or anything above it.
//! - [`schema`]: the section catalogue (built-in, chosen with `builtin-sections`, plus a
//!   repo's own schemas, or rebuilt from a store's entries) and whether a section conforms
//!   to its schema. May not import state, replica, resolve or anything above them.
//! - [`replica`]: anti-entropy, pure: the index of the change sets a machine holds, its
//!   compact summary, and the exchange by which two peers send each other exactly what
//!   the other lacks. May not import resolve, plan or anything above them.
//! - [`resolve`]: the one layering engine — a parsed repo (with spans) or store entries,
//!   the catalogue passed in — into each machine's effective config, with provenance.
//!   May not import replica, plan, xml, report or anything above them.
//! - [`rollout`]: staged rollouts, pure: waves, how far each staged change set got, and
//!   the view a machine whose wave is not reached runs. May not import replica, resolve,
//!   plan or anything above them.
//! - [`plan`]: pure planning: desired entries vs live entries → typed actions, rendering;
//!   machines' effective changes resolved with the catalogue on each side; what git owns
//!   and what the cluster owns. May not import validate, protocol or anything above them.
//! - [`report`]: pure rendering of `show` and `where` output. May not import validate,
//!   protocol or anything above them.
//! - [`xml`]: AsyncOS configuration XML ↔ sections, driven by the schemas' `xml=`
//!   mappings. May not import validate, protocol or anything above them.
//! - [`secret`]: secrets in a repo: age encryption to the cluster's recipients, the
//!   cluster's identities, where a repo holds secrets, and how a secret shows where it is
//!   not needed (`<secret sha256:…>`). May not import validate, protocol or anything above
//!   them.
//! - [`validate`]: every rule of a config repo, all problems of a run together. May not
//!   import protocol, edit, source, cluster, agent or cli.
//! - [`protocol`]: how a CLI talks to an agent and members to one another — a pure frame
//!   codec, typed messages, connections over SSH channels; the SSH client with host-key
//!   pinning, the `Peer` trait beside an in-memory twin; the link and route tables; what
//!   `cluster list`, `status` and `check` carry; which Strata versions mix. May not import
//!   validate, edit, source, cluster, agent or cli.
//! - [`edit`]: copy, move and delete sections in the KDL files, keeping formatting. May
//!   not import source, cluster, agent or cli.
//! - [`source`]: desired state from a working tree or a git ref (git objects, no
//!   checkout), and packs of the config repo's objects between repositories. May not import edit, cluster, agent or cli.
//! - [`cluster`]: the cluster's domain, one machine's part of it, with no sockets, files
//!   or runtime: the node (store, clock, catalogue, logins, the one post-commit pipeline
//!   handing results to an applier), administration, membership, users and roles, who may
//!   log in, the checks every write passes (authority, validity, the follower's and the
//!   freezes' refusals), one handler per request kind. May not import agent or cli.
//! - [`agent`]: the daemon around a node: state dir and `agent.kdl`, the SSH server, the
//!   mesh runtime (links, routes, sync, joins, clustercheck), git serving and the config
//!   repo's objects between members, the repo follower, the running-config files and
//!   hooks, memory release. May not import web or cli.
//! - [`web`]: the web console the agent serves over HTTPS (the seed's GUI): login and
//!   sessions, the mode tree, sections with where they are defined, the seed's edits as
//!   commits on the agent's config repo, the cluster's state. May not import cli.
//! - [`cli`]: the command line: arguments, one module per command, output, and the one
//!   error boundary (error kinds → exit codes). The top floor: every room is below it.
//!
//! Not in the library: the synthetic fleet generator and a git helper for tests and
//! benches live in `tests/support/`, included with `#[path]`.
// One exception, with its reasons: `agent::memory` asks glibc for freed pages back and
// sets its arenas up for a daemon.
#![deny(unsafe_code)]

pub mod agent;
pub mod atomic_file;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod drift_ignore;
pub mod edit;
pub mod freeze;
pub mod model;
pub mod paths;
pub mod plan;
pub mod protocol;
pub mod replica;
pub mod report;
pub mod resolve;
pub mod rollout;
pub mod schema;
pub mod secret;
pub mod source;
pub mod state;
pub mod text;
pub mod validate;
pub mod web;
pub mod xml;
