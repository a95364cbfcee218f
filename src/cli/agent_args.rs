//! Command-line arguments of the agent commands (`agent`, `cluster`, `plan`, `apply`,
//! `log`, `rollback`, and `hash-passphrase` for the `users` section they read) and of how to reach an agent. Kept apart from `args.rs` so the
//! commands that work on files and those that talk to agents change independently.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::args::{RepoArgs, absolute_path};
use crate::model::{GroupName, MachineName};

/// How to reach an agent and prove who you are.
#[derive(Debug, Clone, Default, Args)]
pub struct TargetArgs {
    /// The agent to talk to (default port 2222). HOST may be an alias of your SSH config
    /// (~/.ssh/config, as `ssh HOST` reads it): its HostName, Port, User, IdentityFile,
    /// IdentitiesOnly and UserKnownHostsFile apply; a port or flag given here wins.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub target: Option<String>,
    /// On the appliance itself: the agent's state dir. The agent is reached through its
    /// socket there (agent.sock: the state dir's owner and root only, outside the
    /// network's connection budget), its host key and local administrator key are read
    /// from there; no fingerprint needed.
    #[arg(long, value_name = "DIR", value_parser = absolute_path())]
    pub state_dir: Option<PathBuf>,
    /// The SSH private key to log in with, alone (OpenSSH format). An encrypted key is
    /// signed by your ssh-agent when it holds it, else its passphrase is asked on the
    /// terminal. Without --identity, as OpenSSH: the ssh-agent's keys (SSH_AUTH_SOCK),
    /// then the SSH config's IdentityFile or ~/.ssh/id_ed25519, id_ecdsa, id_rsa, then
    /// the passphrase in STRATA_PASSPHRASE.
    #[arg(long, value_name = "FILE", value_parser = absolute_path())]
    pub identity: Option<PathBuf>,
    /// The SSH config to read for --target, alone (as `ssh -F`; `none`: none). Default:
    /// ~/.ssh/config, then /etc/ssh/ssh_config.
    #[arg(long, value_name = "FILE", env = "STRATA_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// The user to log in as (default: the SSH config's User, else $USER).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The agent's host-key fingerprint, as OpenSSH prints it (`SHA256:…`).
    #[arg(long, value_name = "SHA256:…")]
    pub fingerprint: Option<String>,
    /// A known-hosts file holding the agent's host key. Without this or --fingerprint,
    /// the SSH config's UserKnownHostsFile, else ~/.ssh/known_hosts, is read.
    #[arg(long, value_name = "FILE", value_parser = absolute_path())]
    pub known_hosts: Option<PathBuf>,
    /// Accept and record an agent's host key never seen before (in --known-hosts, else
    /// UserKnownHostsFile or ~/.ssh/known_hosts). A key that changed is still refused.
    #[arg(long)]
    pub trust_on_first_use: bool,
}

/// `strata agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The state dir: host key, store, settings; created on first start.
    #[arg(long, value_name = "DIR", value_parser = absolute_path())]
    pub state_dir: PathBuf,
    /// Where to listen (default: the settings file's `listen`, first 0.0.0.0:2222).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// On first start: this machine's name in the cluster (default: the hostname).
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// How the log on stderr is written: `text` for people, `json` one object a line
    /// (timestamp, level, target, message and the event's fields) for log shippers.
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        env = "STRATA_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// `strata agent --log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event: `TIME LEVEL target: message key=value…`.
    Text,
    /// One JSON object per line: `{"timestamp", "level", "message", fields…, "target"}`.
    Json,
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
    /// takes the cluster's settings in place of its own clusterable ones. Both must run
    /// the same Strata release; a join past the cluster's threshold of machines (the
    /// seed's 20, `cluster-mesh max-machines-warning`) adds a note saying what to watch.
    #[command(after_long_help = "Examples:\n  \
        strata cluster join lab1.example.com:2222 --fingerprint SHA256:… --state-dir /var/lib/strata\n  \
        strata cluster join 10.1.0.1 --fingerprint SHA256:… --group Paris --passphrase-file pass --yes --state-dir …\n  \
        strata cluster join lab1.example.com --fingerprint SHA256:… --pre-shared --yes --state-dir …")]
    Join {
        /// A member of the cluster: `HOST[:PORT]` (default port 2222).
        #[arg(value_name = "MEMBER")]
        address: String,
        /// The member's host-key fingerprint, as OpenSSH prints it (`SHA256:…`); its agent
        /// prints it when it starts.
        #[arg(long, value_name = "SHA256:…", required_unless_present = "known_hosts")]
        fingerprint: Option<String>,
        /// Pin the member's host key as recorded for MEMBER in this known_hosts file
        /// (OpenSSH's format, `[host]:port` entries included) instead of --fingerprint.
        #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
        known_hosts: Option<PathBuf>,
        /// The group to join (default Main_Group; a config repo's declaration wins).
        #[arg(long, value_name = "GROUP")]
        group: Option<GroupName>,
        /// Read the cluster admin passphrase from the first line of FILE (else from
        /// STRATA_PASSPHRASE).
        #[arg(long, value_name = "FILE", conflicts_with = "pre_shared", value_parser = absolute_path())]
        passphrase_file: Option<PathBuf>,
        /// Log in with this machine's host key, registered on the member with
        /// `strata cluster prepjoin add` (no passphrase).
        #[arg(long)]
        pre_shared: bool,
        /// Do not ask before this machine's settings are replaced by the cluster's.
        #[arg(long)]
        yes: bool,
        /// This machine's agent state dir (the join runs on the joining machine).
        #[arg(long, value_name = "DIR", value_parser = absolute_path())]
        state_dir: PathBuf,
    },
    /// Rebuild this machine's lost or damaged store from a member's copy of the cluster,
    /// with its agent stopped: it logs in to MEMBER with its own host key (so it comes
    /// back as itself: host key, machine name, serial), takes every change set, checks
    /// the rebuilt entries against MEMBER's digests, and only then puts the store in
    /// place; the old one is kept beside it as store.redb.damaged-SECONDS. Start the
    /// agent afterwards: it takes from its peers whatever they committed since.
    #[command(after_long_help = "Example:\n  \
        strata cluster repair lab1.example.com:2222 --fingerprint SHA256:… --state-dir /var/lib/strata\n  \
        strata agent --state-dir /var/lib/strata")]
    Repair {
        /// A member of the cluster: `HOST[:PORT]` (default port 2222).
        #[arg(value_name = "MEMBER")]
        address: String,
        /// The member's host-key fingerprint, as OpenSSH prints it (`SHA256:…`); its agent
        /// prints it when it starts.
        #[arg(long, value_name = "SHA256:…", required_unless_present = "known_hosts")]
        fingerprint: Option<String>,
        /// Pin the member's host key as recorded for MEMBER in this known_hosts file
        /// instead of --fingerprint.
        #[arg(long, value_name = "FILE", conflicts_with = "fingerprint")]
        known_hosts: Option<PathBuf>,
        /// This machine's agent state dir (its agent stopped).
        #[arg(long, value_name = "DIR", value_parser = absolute_path())]
        state_dir: PathBuf,
    },
    /// Set a user's passphrase (default: the cluster admin, `admin`), stored as an
    /// argon2id hash in the cluster's `users` section; other users, and the user's keys
    /// and role, stay. The hash is the cluster's: an apply of a repo that gives the user
    /// no hash keeps it, and a follower's self-heal does not revert it.
    #[command(after_long_help = "Examples:\n  \
        strata cluster passwd --state-dir /var/lib/strata                 # admin; asks twice, echo off\n  \
        strata cluster passwd ops --passphrase-file ops.pass --state-dir /var/lib/strata  # a user the repo declares")]
    Passwd {
        /// The user: `admin`, or one the cluster's `users` section declares.
        #[arg(value_name = "USER", default_value = "admin")]
        account: String,
        /// Read the passphrase from the first line of FILE instead of asking twice.
        #[arg(long, value_name = "FILE", value_parser = absolute_path())]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Rename the cluster (clusterconfig SETNAME).
    #[command(
        after_long_help = "Example:\n  strata cluster setname emea --state-dir /var/lib/strata"
    )]
    Setname {
        /// The cluster's new name.
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Add a group with no machines and no settings of its own (ADDGROUP).
    #[command(
        after_long_help = "Example:\n  strata cluster addgroup Paris --state-dir /var/lib/strata"
    )]
    Addgroup {
        /// The new group.
        #[arg(value_name = "GROUP")]
        group: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Move a machine to another group; it then inherits that group's settings (SETGROUP).
    #[command(
        after_long_help = "Example:\n  strata cluster setgroup lab3.example.com Paris --state-dir /var/lib/strata"
    )]
    Setgroup {
        /// The machine.
        #[arg(value_name = "MACHINE")]
        machine: String,
        /// Its new group.
        #[arg(value_name = "GROUP")]
        group: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Rename a group: its machines and the settings it defines go with it, in one
    /// change set (RENAMEGROUP).
    #[command(
        after_long_help = "Example:\n  strata cluster renamegroup Main_Group London --state-dir /var/lib/strata"
    )]
    Renamegroup {
        /// The group.
        #[arg(value_name = "OLD")]
        old: String,
        /// Its new name.
        #[arg(value_name = "NEW")]
        new: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Rename a machine (the seed's hostname change, without leaving the cluster): its
    /// membership, group, host key and machine-level settings go with it in one change
    /// set, and its agent restarts under the new name (rewriting its agent.kdl).
    #[command(after_long_help = "Examples:\n  \
        strata cluster renamemachine lab2.example.com lab7.example.com --state-dir /var/lib/strata\n  \
        # the new name resolves elsewhere: give the address peers dial\n  \
        strata cluster renamemachine lab2 lab7 --address 10.1.0.7 --state-dir /var/lib/strata\n\n\
        In a repo that declares its machines, rename it there instead: `machine \"NEW\" was=\"OLD\"`.")]
    Renamemachine {
        /// The machine.
        #[arg(value_name = "OLD")]
        old: MachineName,
        /// Its new name.
        #[arg(value_name = "NEW")]
        new: MachineName,
        /// The address peers and operators reach it at from now on (default: the one it
        /// has).
        #[arg(long, value_name = "ADDR")]
        address: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Delete a group and the settings it defines; never the last group (DELETEGROUP).
    #[command(after_long_help = "Examples:\n  \
        # an empty group\n  \
        strata cluster deletegroup Rome --state-dir /var/lib/strata\n  \
        # a group with machines: they move to Main_Group\n  \
        strata cluster deletegroup Paris --move-to Main_Group --state-dir /var/lib/strata")]
    Deletegroup {
        /// The group.
        #[arg(value_name = "GROUP")]
        group: String,
        /// Where its machines go; needed when it has any.
        #[arg(long, value_name = "GROUP")]
        move_to: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List the groups and machines, with serials, the Strata and appliance versions they
    /// run, and how this machine reaches each (connected, routed, unreachable,
    /// disconnected, expected to join).
    List {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Every link as each machine sees it: up or down, round-trip time, and the route a
    /// message takes when the direct link is down, and why this machine's last dial of it
    /// failed (unreachable, refused, another Strata release).
    Connstatus {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Detach a machine from the mesh: it keeps running its last config and can be
    /// changed locally; no links go to it until `reconnect` (the rolling-upgrade path).
    Disconnect {
        /// The machine.
        #[arg(value_name = "MACHINE")]
        machine: MachineName,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Restore a disconnected machine's links. Refused while the machines would run
    /// different Strata releases: run on the machine itself, if a connected member does;
    /// run on a member, if the machine does (each asked its version now).
    Reconnect {
        /// The machine.
        #[arg(value_name = "MACHINE")]
        machine: MachineName,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Remove a machine from the cluster for good: it keeps its flattened effective
    /// config as standalone settings; the others forget it and refuse its key.
    Remove {
        /// The machine.
        #[arg(value_name = "MACHINE")]
        machine: MachineName,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Machines registered to join with their host key instead of the admin passphrase
    /// (PREPJOIN).
    Prepjoin(PrepjoinArgs),
}

/// `strata cluster prepjoin`.
#[derive(Debug, Args)]
pub struct PrepjoinArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PrepjoinCommand,
}

/// `strata cluster prepjoin …` operations.
#[derive(Debug, Subcommand)]
pub enum PrepjoinCommand {
    /// Register a machine to join with its host key and serial number.
    #[command(
        after_long_help = "Example (the key and serial as `prepjoin print` shows them there):\n  \
        strata cluster prepjoin add lab6.example.com --serial 4229D8A1F2C4 \\\n    \
        --key 'ssh-ed25519 AAAAC3Nza… root@lab6' --state-dir /var/lib/strata"
    )]
    Add {
        /// The machine's name.
        #[arg(value_name = "HOST")]
        host: String,
        /// Its serial number.
        #[arg(long, value_name = "SERIAL")]
        serial: String,
        /// Its SSH host key, as one OpenSSH public-key line (`ssh-ed25519 AAAA…`).
        #[arg(long, value_name = "KEY")]
        key: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// List the machines registered to join.
    #[command(
        after_long_help = "Example:\n  strata cluster prepjoin list --state-dir /var/lib/strata --format json"
    )]
    List {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// This machine's name, serial number and host key, to register it on a member
    /// with `prepjoin add` (run it on the machine that will join).
    #[command(
        after_long_help = "Example:\n  strata cluster prepjoin print --state-dir /var/lib/strata"
    )]
    Print {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Forget a machine registered to join.
    #[command(
        after_long_help = "Example:\n  strata cluster prepjoin delete lab6.example.com --state-dir /var/lib/strata"
    )]
    Delete {
        /// The machine's name.
        #[arg(value_name = "HOST")]
        host: String,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `strata hash-passphrase`.
#[derive(Debug, Args)]
pub struct HashPassphraseArgs {
    /// Read the passphrase from the first line of FILE instead of asking twice.
    #[arg(long, value_name = "FILE", value_parser = absolute_path())]
    pub passphrase_file: Option<PathBuf>,
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
    #[arg(long, value_name = "FILE", value_parser = absolute_path())]
    pub out: Option<PathBuf>,
    /// Let secrets in clear text through as warnings, while a repo migrates to encrypted
    /// secrets (`strata secret reencrypt` encrypts them). A push is refused all the same.
    #[arg(long)]
    pub allow_plaintext_secrets: bool,
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
    #[arg(long, value_name = "FILE", conflicts_with = "git_ref", value_parser = absolute_path())]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Apply without asking. Without it, the plan is shown and the terminal asked "Do
    /// you want to perform these actions?" (only `yes` goes ahead); with no terminal to
    /// ask on, or with --format json, apply refuses. Removing members or this machine's
    /// interfaces needs its own flag below as well.
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
    /// Allow the apply to leave no administrator able to log in (the last administrator
    /// with a passphrase hash or a key loses it, is locked or removed). Without it such a
    /// plan is refused, even with --yes.
    #[arg(long)]
    pub allow_admin_lockout: bool,
    /// Apply even while a follower in mode apply keeps the cluster at a branch and this
    /// is not its commit. Without it such an apply is refused, as it would be undone by
    /// the next sync; with it, self-heal (if on) reverts it after its grace.
    #[arg(long)]
    pub override_follower: bool,
    /// Apply during a change freeze (the repo's `change-freeze` windows), as an
    /// administrator, for REASON: it is recorded in the change set's message and logged.
    #[arg(long, value_name = "REASON")]
    pub break_glass: Option<String>,
    /// Apply on trial (commit confirmed): every machine reverts the change set, each by
    /// its own clock, unless `strata confirm` reaches it within DURATION (30s, 5m, 1h30m)
    /// — so a change that cuts you off undoes itself, even on machines cut off from the
    /// rest. A revert stands once made; changes made after the trial are never undone.
    #[arg(long, value_name = "DURATION", value_parser = super::propagation::parse_window)]
    pub confirm_within: Option<Duration>,
    /// Let secrets in clear text through as warnings, while a repo migrates to encrypted
    /// secrets (`strata secret reencrypt` encrypts them). A push is refused all the same.
    #[arg(long)]
    pub allow_plaintext_secrets: bool,
    /// Wait until every reachable member has applied the change set (default 60 s; a
    /// number is seconds, or write 30s, 2m, 1h30m, 500ms), print where it stands on each, and
    /// fail if some did not in time. Without it, apply waits a second and reports.
    #[arg(long, value_name = "TIMEOUT", num_args = 0..=1, default_missing_value = "60",
          value_parser = super::propagation::parse_timeout)]
    pub wait: Option<Duration>,
}

/// `strata log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Show the conflict log instead: writes made concurrently (on machines that could
    /// not talk) that lost under last-writer-wins, with who wrote them, where and when,
    /// and the write that won.
    #[arg(long)]
    pub conflicts: bool,
    /// Show only the newest N change sets (as `git log -n`).
    #[arg(short = 'n', long, value_name = "N")]
    pub max_count: Option<usize>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `strata confirm`.
#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// The change set applied on trial: its id as `strata log` prints it, or a unique
    /// prefix of at least 4 digits. Default: the only one waiting.
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `strata rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RolloutCommand,
}

/// `strata rollout …` operations.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Stop the rollout where it is: no further wave is released.
    Halt {
        /// The staged change set (its id or a unique prefix); default: the only one
        /// moving.
        #[arg(value_name = "ID")]
        id: Option<String>,
        /// Why, for the log and `strata status`.
        #[arg(long, value_name = "REASON")]
        reason: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Release every remaining wave at once (also after a halt).
    Promote {
        /// The staged change set; default: the only one moving or halted.
        #[arg(value_name = "ID")]
        id: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Revert the change where it ran, and stop the rollout.
    Undo {
        /// The staged change set; default: the only one moving or halted.
        #[arg(value_name = "ID")]
        id: Option<String>,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `strata rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The change set whose state to restore: its id as `strata log` prints it, or any
    /// unique prefix of at least 4 digits. Ids are the same on every machine.
    #[arg(long, value_name = "ID")]
    pub to: String,
    /// Roll back without asking. Without it, what the rollback changes is shown and the
    /// terminal asked "Do you want to perform these actions?" (only `yes` goes ahead);
    /// with no terminal to ask on, or with --format json, rollback refuses.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}
