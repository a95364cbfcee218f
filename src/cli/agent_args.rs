//! Command-line arguments of the agent commands (`agent`, `cluster`, `plan`, `apply`,
//! `log`, `rollback`) and of how to reach an agent. Kept apart from `args.rs` so the
//! commands that work on files and those that talk to agents change independently.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::RepoArgs;
use crate::model::{GroupName, MachineName};

/// How to reach an agent and prove who you are.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// The agent to talk to (default port 2222).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub target: Option<String>,
    /// On the appliance itself: the agent's state dir. Its address, host key and local
    /// administrator key are read from there; no fingerprint needed.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The SSH private key to log in with (OpenSSH format, unencrypted). Without it, the
    /// passphrase is read from STRATA_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The user to log in as (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The agent's host-key fingerprint, as OpenSSH prints it (`SHA256:…`).
    #[arg(long, value_name = "SHA256:…")]
    pub fingerprint: Option<String>,
    /// A known-hosts file holding the agent's host key. Without this or --fingerprint,
    /// ~/.ssh/known_hosts is read.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Accept and record an agent's host key never seen before (in --known-hosts, else
    /// ~/.ssh/known_hosts). A key that changed is still refused.
    #[arg(long)]
    pub trust_on_first_use: bool,
}

/// `strata agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The state dir: host key, store, settings; created on first start.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Where to listen (default: the settings file's `listen`, first 0.0.0.0:2222).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// On first start: this machine's name in the cluster (default: the hostname).
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
}

/// `strata cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// `strata cluster …` operations.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Turn a standalone agent into a one-machine cluster: its standalone settings become
    /// cluster settings; machine-only ones (interfaces, hostname, …) stay at machine level.
    Create {
        /// The cluster's name.
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Join this machine to the cluster of a member, over SSH: its agent checks the
    /// member's host key against --fingerprint, proves the cluster admin passphrase (or,
    /// with --pre-shared, its own host key registered there with `prepjoin add`), and
    /// takes the cluster's settings in place of its own clusterable ones.
    #[command(after_help = "Examples:\n  \
        strata cluster join lab1.example.com:2222 --fingerprint SHA256:… --state-dir /var/lib/strata\n  \
        strata cluster join 10.1.0.1 --fingerprint SHA256:… --group Paris --passphrase-file pass --yes --state-dir …\n  \
        strata cluster join lab1.example.com --fingerprint SHA256:… --pre-shared --yes --state-dir …\n\n\
        Exit codes: 0 joined, 1 refused (wrong fingerprint, passphrase or key; another version; already in a cluster), 69 unreachable.")]
    Join {
        /// A member of the cluster: `HOST[:PORT]` (default port 2222).
        #[arg(value_name = "MEMBER")]
        address: String,
        /// The member's host-key fingerprint, as OpenSSH prints it (`SHA256:…`); its agent
        /// prints it when it starts.
        #[arg(long, value_name = "SHA256:…")]
        fingerprint: String,
        /// The group to join (default Main_Group; a config repo's declaration wins).
        #[arg(long, value_name = "GROUP")]
        group: Option<GroupName>,
        /// Read the cluster admin passphrase from the first line of FILE (else from
        /// STRATA_PASSPHRASE).
        #[arg(long, value_name = "FILE", conflicts_with = "pre_shared")]
        passphrase_file: Option<PathBuf>,
        /// Log in with this machine's host key, registered on the member with
        /// `strata cluster prepjoin add` (no passphrase).
        #[arg(long)]
        pre_shared: bool,
        /// Do not ask before this machine's settings are replaced by the cluster's.
        #[arg(long)]
        yes: bool,
        /// This machine's agent state dir (the join runs on the joining machine).
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
    },
    /// List the groups and machines, with serials and how this machine reaches each
    /// (connected, routed, unreachable, disconnected, expected to join).
    #[command(after_help = "Exit codes: 0 listed, 1 refused, 69 unreachable.")]
    List {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Every link as each machine sees it: up or down, round-trip time, and the route a
    /// message takes when the direct link is down.
    #[command(after_help = "Exit codes: 0 shown, 1 refused, 69 unreachable.")]
    Connstatus {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Detach a machine from the mesh: it keeps running its last config and can be
    /// changed locally; no links go to it until `reconnect` (the rolling-upgrade path).
    #[command(after_help = "Exit codes: 0 done, 1 refused, 69 unreachable.")]
    Disconnect {
        /// The machine.
        #[arg(value_name = "MACHINE")]
        machine: MachineName,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Restore a disconnected machine's links (it must run the same Strata version).
    #[command(after_help = "Exit codes: 0 done, 1 refused, 69 unreachable.")]
    Reconnect {
        /// The machine.
        #[arg(value_name = "MACHINE")]
        machine: MachineName,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove a machine from the cluster for good: it keeps its flattened effective
    /// config as standalone settings; the others forget it and refuse its key.
    #[command(after_help = "Exit codes: 0 removed, 1 refused, 69 unreachable.")]
    Remove {
        /// The machine.
        #[arg(value_name = "MACHINE")]
        machine: MachineName,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `strata plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Read the repo at this git ref (branch, tag, commit) from git objects, without a
    /// checkout. Default: the working tree.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Also save the plan (JSON) for `strata apply --plan`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `strata apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Read the repo at this git ref from git objects. Default: the working tree.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Apply a plan saved by `strata plan --out` instead of computing one.
    #[arg(long, value_name = "FILE", conflicts_with = "git_ref")]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Do not ask before removing entries (asked only on a terminal). Removing members
    /// or this machine's interfaces needs its own flag below as well.
    #[arg(long)]
    pub yes: bool,
    /// Allow the apply to remove members of the cluster (machines the repo no longer
    /// declares, the one the apply runs through included). Without it such a plan is
    /// refused, even with --yes: a `machines/` directory that was not read looks the same.
    #[arg(long)]
    pub allow_member_removal: bool,
    /// Allow the apply to reset the interfaces of the machine it runs through (the
    /// agent's own) to the factory default, which changes its addresses. Without it such
    /// a plan is refused, even with --yes.
    #[arg(long)]
    pub allow_own_interfaces: bool,
}

/// `strata log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `strata rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The change set whose state to restore: its id as `strata log` prints it, or any
    /// unique prefix of at least 4 digits. Ids are the same on every machine.
    #[arg(long, value_name = "ID")]
    pub to: String,
    #[command(flatten)]
    pub target: TargetArgs,
}
