//! Arguments of `strata import-xml` and `strata export-xml`.

use std::path::PathBuf;

use clap::Args;

use super::args::RepoArgs;

/// `strata import-xml`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("into").args(["new_cluster", "into_machine"])))]
pub struct ImportXmlArgs {
    /// The AsyncOS configuration file (`saveconfig`), or a cluster XML file written by
    /// `strata export-xml --cluster`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Load the appliance as this machine of the existing repo: machine-only sections at
    /// machine level, the others as machine overrides where they differ from what the
    /// machine would inherit.
    #[arg(
        long = "machine",
        value_name = "NAME",
        id = "into_machine",
        conflicts_with = "new_cluster"
    )]
    pub machine: Option<String>,
    /// Seed a new repo from a standalone appliance, as AsyncOS's "create cluster" does:
    /// clusterable settings at the cluster, machine-only ones at the machine, `Main_Group`.
    /// With a cluster XML file: the new cluster's name.
    #[arg(long, value_name = "NAME")]
    pub new_cluster: Option<String>,
    /// With --machine: the machine's group (default `Main_Group`).
    #[arg(long, value_name = "NAME", requires = "into_machine")]
    pub group: Option<String>,
    /// The address peers reach the machine at (`address=`); default its name.
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,
    /// With --new-cluster: the machine's name (default: the appliance's hostname).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// With a cluster XML file: load it onto the cluster's own appliances, as AsyncOS's
    /// "Load Cluster Configuration" does. `NAME=MACHINE`: appliance NAME joins the group
    /// of the file's MACHINE and gets a copy of its machine-level settings;
    /// `NAME=group:GROUP`: NAME joins GROUP with no machine-level settings ("Don't Copy").
    /// Repeat for each appliance; the file's own machines are then not declared.
    #[arg(
        long,
        value_name = "NAME=MACHINE|NAME=group:GROUP",
        value_parser = crate::xml::assign::Assignment::parse,
        conflicts_with = "into_machine"
    )]
    pub assign: Vec<crate::xml::assign::Assignment>,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Encrypt the file's secrets (LDAP bind and SMTP auth passwords) to this age
    /// recipient (`age1…`, as `strata secret recipient` prints the cluster's);
    /// repeatable. A file with secrets is refused without one: none is written in clear
    /// text.
    #[arg(long, value_name = "AGE1…")]
    pub recipient: Vec<String>,
}

/// `strata export-xml`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").args(["machine", "cluster"]).required(true)))]
pub struct ExportXmlArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Write this machine's flattened effective configuration as an AsyncOS
    /// configuration file (saveconfig; what the machine keeps when removed from the
    /// cluster).
    #[arg(long, value_name = "NAME")]
    pub machine: Option<String>,
    /// Write every level (cluster, groups, machines) in Strata's cluster XML form, which
    /// `import-xml` reads back.
    #[arg(long)]
    pub cluster: bool,
    /// With --machine: an age identity file (`AGE-SECRET-KEY-1…` lines: the
    /// break-glass key the repo's secrets are also encrypted to) to decrypt them with, as
    /// the appliance expects them. Needs --out: clear secrets go only to a file (0600).
    #[arg(long, value_name = "FILE", requires = "out")]
    pub age_identity: Option<PathBuf>,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}
