//! Command-line arguments (clap). Only the CLI knows about clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Strata: centralized management for clusters of appliances, the GitOps way.
///
/// Describe a cluster, its groups and its machines in KDL files under git; Strata checks
/// them, shows each machine's effective configuration and where each part comes from, and
/// edits them the way AsyncOS's `clusterset` does.
#[derive(Debug, Parser)]
#[command(name = "strata", version, max_term_width = 100)]
pub struct Cli {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people; colour only on a terminal and without NO_COLOR.
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions workflow annotations (validate only; other commands refuse it).
    Github,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check config repos and files without contacting any machine (for CI).
    ///
    /// Reports every problem at once, each with its file, line and column, a label, a help
    /// line and a stable code. Exits 0 when valid (warnings allowed), 1 when invalid.
    #[command(after_long_help = "Examples:\n  \
        strata validate                         # the repo in the current directory\n  \
        strata validate examples/americas       # a repo elsewhere\n  \
        strata validate --format github .       # annotations for a GitHub Actions job\n  \
        strata validate --format json . | jq '.problems[] | .file + \":\" + (.line|tostring)'")]
    Validate(ValidateArgs),
    /// Show a machine's effective configuration and where each section comes from, or
    /// what a group or the cluster defines.
    ///
    /// The output is KDL: each section is preceded by a comment naming the mode and the
    /// file:line it comes from, or "factory default" when no mode defines it.
    #[command(after_long_help = "Examples:\n  \
        strata show --machine lab3.example.com          # everything lab3 runs, with sources\n  \
        strata show --machine lab3.example.com dns      # one section\n  \
        strata show --group Paris                       # what the Paris group overrides\n  \
        strata show --sections                          # the section catalogue")]
    Show(ShowArgs),
    /// List the modes that define a section and the machines each one reaches
    /// (AsyncOS `clustershow`).
    #[command(after_long_help = "Example:\n  strata where dns")]
    Where(WhereArgs),
    /// Copy a section from one mode to another, keeping it at the source (`clusterset`).
    ///
    /// The destination's own version, if any, is replaced. With `--to all-groups` it goes
    /// to every group: groups that define their own are skipped unless
    /// --replace-existing, a source group keeps its own, and the summary says what
    /// happened to each group. Files are edited in place; comments and formatting
    /// elsewhere are kept byte for byte. A notice names the lower modes that define the
    /// section themselves and so are not affected.
    #[command(after_long_help = "Examples:\n  \
        strata copy dns --from cluster --to group:Paris        # start a Paris override\n  \
        strata copy dns --from factory --to group:Paris        # … from the default settings\n  \
        strata copy smtp-routes --from cluster --to all-groups # groups with their own keep it\n  \
        strata copy smtp-routes --from group:Rome --to all-groups --replace-existing\n  \
        strata copy listeners --from cluster --to machine:lab1.example.com   # experiment on one machine")]
    Copy(CopyArgs),
    /// Move a section from one mode to another: the source no longer defines it.
    ///
    /// Refused when the section may not live at the destination's level (e.g. `users`
    /// is cluster-only, `interfaces` machine-only). With `--to all-groups`, as `copy`
    /// does it; a source group is one of the groups and keeps the section.
    #[command(
        after_long_help = "Example (publish an experiment to the whole cluster):\n  \
        strata move listeners --from machine:lab1.example.com --to cluster"
    )]
    Move(CopyArgs),
    /// Delete a section at a mode, so that the mode inherits it again.
    ///
    /// Refused, writing nothing, when the repo would no longer validate (deleting the
    /// `interfaces` a listener names, say): the errors it would cause are printed. So are
    /// copies and moves.
    #[command(after_long_help = "Example:\n  strata delete dns --at machine:lab5.example.com")]
    Delete(DeleteArgs),
    /// Run the agent: the daemon on each appliance (SSH server, durable store).
    ///
    /// It logs to stderr (RUST_LOG filters). Started by systemd (the unit
    /// strata-agent.service, Type=notify), it says READY once it listens and its mesh
    /// runs, keeps a STATUS line, and pings the watchdog while its store and mesh answer.
    ///
    /// Its local settings are in the state dir's agent.kdl: with `web listen="ADDR:PORT"`
    /// it also serves the web console over HTTPS and prints its URL and certificate
    /// fingerprint; with `metrics listen="ADDR:PORT"`, Prometheus metrics.
    #[command(after_long_help = "Examples:\n  \
        strata agent --state-dir /var/lib/strata --machine lab1.example.com\n  \
        strata agent --state-dir /var/lib/strata --listen 10.1.0.1:2222 --log-format json\n  \
        RUST_LOG=strata=debug strata agent --state-dir ./lab1")]
    Agent(super::agent_args::AgentArgs),
    /// Manage the cluster through an agent (AsyncOS `clusterconfig`).
    Cluster(super::agent_args::ClusterArgs),
    /// Print the argon2id hash of a passphrase, for a user's `passphrase-hash` in the
    /// `users` section (as mkpasswd does); asks twice, echo off, without a file.
    #[command(after_long_help = "Example:\n  \
        strata hash-passphrase --passphrase-file ada.pass\n  \
        # then, in cluster.kdl: user \"ada\" role=\"operator\" passphrase-hash=\"$argon2id$v=19$…\"")]
    HashPassphrase(super::agent_args::HashPassphraseArgs),
    /// Internal: the config repo's git hook on the agent (`pre-receive`), which validates,
    /// plans and applies a push to the deployed branch, or refuses it.
    #[command(hide = true)]
    GitHook(super::git_hook::GitHookArgs),
    /// Compare the desired state (working tree or a git ref) with an agent's live state.
    ///
    /// Exits 0 when nothing would change, 2 when something would, 1 on error.
    Plan(super::agent_args::PlanArgs),
    /// Commit the plan to an agent as one atomic change set; a stale plan is refused.
    ///
    /// The plan is shown, then the terminal asked "Do you want to perform these
    /// actions?"; only `yes` applies. --yes skips the question; with no terminal to ask
    /// on (CI, a script) or with --format json, apply refuses unless --yes is given.
    ///
    /// A plan that removes members of the cluster, resets the interfaces of the machine
    /// the apply runs through to the factory default, or leaves no administrator able to
    /// log in is refused unless --allow-member-removal, --allow-own-interfaces or
    /// --allow-admin-lockout is given: --yes alone never does it. `strata plan` warns of
    /// each.
    Apply(super::agent_args::ApplyArgs),
    /// List the change sets an agent has applied (`--conflicts`: the writes lost to
    /// concurrent ones under last-writer-wins).
    Log(super::agent_args::LogArgs),
    /// Check that every member holds the same configuration (AsyncOS `clustercheck`).
    ///
    /// Asks a member to compare what every reachable member holds and names each entry
    /// that differs: which machine holds which version, by whom, where and when. Also
    /// reports unreachable and disconnected machines, running-config files edited by
    /// hand, members that cannot write their store (Degraded), and conflicts not settled
    /// yet; with --repo, the drift from a config repo, less what its drift-ignore rules
    /// in force cover (named, not hidden). Warns, without changing the exit code, when
    /// members' appliance versions differ and when machine hostnames do not resolve on
    /// the checking member. Exits 0 when consistent, 2 on inconsistency, drift or a
    /// Degraded member, 1 on error.
    #[command(after_long_help = "Examples:\n  \
        strata check --target lab1.example.com\n  \
        strata check --repo . --ref main --format json   # in CI: drift from git\n  \
        strata check --resolve listeners@cluster --use lab2.example.com")]
    Check(super::check::CheckArgs),
    /// Show whether the cluster runs what git says, as Argo CD shows it.
    ///
    /// The followed ref and its head, the last applied commit (the newest change set
    /// stamped with a commit) and whether a `git clone` from this member returns it yet,
    /// Synced / OutOfSync / Unknown with the entries that differ and who changed them,
    /// the follower's last error, and the machine's health: the last run (hooks) and
    /// whether it can write its store. A member that follows no repo compares the live
    /// state with what the last applied commit left. Differences the drift-ignore rules in
    /// force cover are named, not counted, and the rules are listed. Exits 0 when synced,
    /// 2 when out of sync, 1 when unknown or on error.
    #[command(after_long_help = "Examples:\n  \
        strata status --state-dir /var/lib/strata\n  \
        strata status --target lab2.example.com --format json")]
    Status(super::status::StatusArgs),
    /// Apply the state as of an earlier change set, as a new change set.
    ///
    /// What it changes is shown first (computed by the agent), then asked as `apply`
    /// asks; --yes skips the question. It commits exactly what it showed: if the cluster
    /// changed meanwhile, it is refused as stale.
    ///
    /// Refused while the cluster follows a branch in mode apply (the next sync would
    /// undo it): pin a commit or revert in git instead.
    Rollback(super::agent_args::RollbackArgs),
    /// Keep a change set applied on trial (`apply --confirm-within`, `git push -o
    /// confirm-within=…`): without this, every machine reverts it when its time runs out.
    ///
    /// Confirm through any member: the confirmation spreads as a change set. A machine
    /// cut off from it when the time runs out reverts by its own clock, and on heal the
    /// revert stands (the log says why). Without ID, the only change set waiting.
    #[command(after_long_help = "Examples:\n  \
        strata apply --repo . --confirm-within 5m --state-dir /var/lib/strata\n  \
        # still reachable? keep it\n  \
        strata confirm --state-dir /var/lib/strata\n  \
        strata confirm 8f2c1d0e --target lab2.example.com")]
    Confirm(super::agent_args::ConfirmArgs),
    /// Steer a staged rollout (the cluster's `rollout` section): halt it where it is,
    /// promote it (release every remaining wave at once, also after a halt), or undo it
    /// (revert the change where it ran).
    ///
    /// Through any member: each is a change set, so every member agrees. Without ID, the
    /// only rollout still moving or halted.
    #[command(after_long_help = "Examples:\n  \
        strata rollout halt --reason \"INC-42: canary drops mail\" --state-dir /var/lib/strata\n  \
        strata rollout promote 8f2c1d0e --target lab2.example.com\n  \
        strata rollout undo --state-dir /var/lib/strata")]
    Rollout(super::agent_args::RolloutArgs),
    /// Convert an AsyncOS configuration XML file (saveconfig) into KDL in a config repo.
    ///
    /// `--machine NAME` loads it as one machine of an existing repo; `--new-cluster NAME`
    /// seeds a new repo from a standalone appliance. A cluster XML file (from `export-xml
    /// --cluster`) becomes a whole repo; with `--assign` it is loaded onto the cluster's
    /// own appliances (AsyncOS's "Load Cluster Configuration"). Unknown elements are kept
    /// in `xml-extra`, never dropped. Existing files are not overwritten unless --force is
    /// given; nothing is written unless the result validates.
    #[command(after_long_help = "Examples:\n  \
        strata import-xml mail1.xml --new-cluster emea --repo emea\n  \
        strata import-xml mail2.xml --machine mail2.example.com --repo emea\n  \
        strata import-xml saved.xml --repo americas --assign mail1.example.com=lab1.example.com \\\n      \
        --assign mail2.example.com=group:Paris")]
    ImportXml(super::xml_args::ImportXmlArgs),
    /// Write AsyncOS configuration XML: a machine's flattened effective configuration
    /// (`--machine`), or every level in Strata's cluster XML form (`--cluster`).
    ///
    /// The output is deterministic: the same repo always gives the same bytes.
    ExportXml(super::xml_args::ExportXmlArgs),
    /// Secrets in the repo: print the cluster's recipients, encrypt a value to them,
    /// rotate and retire the cluster's identity, re-encrypt a repo's secrets in place.
    ///
    /// A `type="secret"` value (an LDAP bind password, an SMTP auth password) is kept in
    /// git only as age armoured text; members decrypt it for their running config.
    Secret(super::secret::SecretArgs),
    /// Print the completion script for SHELL on stdout (bash, zsh, fish, elvish,
    /// powershell): commands, subcommands, flags and their values.
    #[command(after_long_help = "Examples:\n  \
        strata completions bash > ~/.local/share/bash-completion/completions/strata\n  \
        strata completions zsh > ~/.zfunc/_strata      # with fpath+=(~/.zfunc) before compinit\n  \
        strata completions fish > ~/.config/fish/completions/strata.fish\n  \
        source <(strata completions bash)              # this shell only\n\n\
        The .deb installs the bash, zsh and fish scripts where those shells look.")]
    Completions(super::shell_tools::CompletionsArgs),
    /// Write a manual page for every command and subcommand into DIR: strata.1,
    /// strata-cluster.1, strata-cluster-join.1, …
    ///
    /// Each page holds the command's --help text, its examples and exit codes. Every page
    /// is written, or none.
    #[command(after_long_help = "Examples:\n  \
        strata manpages ~/.local/share/man/man1 && man strata-cluster-join\n  \
        strata manpages /tmp/strata-man && man -l /tmp/strata-man/strata-apply.1")]
    Manpages(super::shell_tools::ManpagesArgs),
}

/// Where the config repo is.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// The config repo directory.
    #[arg(long, default_value = ".", value_name = "DIR", value_parser = absolute_path())]
    pub repo: PathBuf,
}

/// The parser of a path argument that is made absolute against the current directory
/// as it is read ([`crate::paths`]): `--state-dir`, `--repo`, `--identity`, and every
/// other path an agent command or the agent reads or hands on. (`validate`, `import-xml`
/// and `export-xml` name their files back as they were typed: those stay relative.)
pub(super) fn absolute_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser;
    // `-` is standard input (`--passphrase-file -`), not a file called `-`.
    clap::builder::PathBufValueParser::new().try_map(|p: PathBuf| {
        if p.as_os_str() == "-" {
            Ok(p)
        } else {
            crate::paths::absolute(&p)
        }
    })
}

/// `strata validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Repo directories or single files (default: the current directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The config repo directory (same as giving it as a path).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Let secrets in clear text through as warnings, while a repo migrates to encrypted
    /// secrets (`strata secret reencrypt` encrypts them). A push is refused all the same.
    #[arg(long)]
    pub allow_plaintext_secrets: bool,
}

/// `strata show`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").args(["machine", "group", "cluster", "sections"])))]
pub struct ShowArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The machine whose effective configuration to show.
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// Show what a group defines.
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// Show what the cluster defines.
    #[arg(long)]
    pub cluster: bool,
    /// List the section catalogue instead.
    #[arg(long)]
    pub sections: bool,
    /// Only this section.
    #[arg(value_name = "SECTION")]
    pub section: Option<String>,
}

/// `strata where`.
#[derive(Debug, Args)]
pub struct WhereArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The section to look for.
    #[arg(value_name = "SECTION")]
    pub section: String,
}

/// `strata copy` and `strata move`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The section to copy or move.
    #[arg(value_name = "SECTION")]
    pub section: String,
    /// The mode that defines it now: `cluster`, `group:NAME` or `machine:NAME`; for
    /// `copy`, also `factory`: the section's factory default, as its schema gives it.
    #[arg(long, value_name = "MODE")]
    pub from: String,
    /// The mode to put it at, or `all-groups`: every declared group. A source group is
    /// one of them and keeps the section (on a move too); a group that defines its own
    /// keeps it, unless --replace-existing.
    #[arg(long, value_name = "MODE")]
    pub to: String,
    /// With `--to all-groups`: replace the section of groups that define their own
    /// (without it they are skipped, and the summary names them).
    #[arg(long)]
    pub replace_existing: bool,
}

/// `strata delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The section to delete.
    #[arg(value_name = "SECTION")]
    pub section: String,
    /// The mode to delete it at: `cluster`, `group:NAME` or `machine:NAME`.
    #[arg(long, value_name = "MODE")]
    pub at: String,
}
