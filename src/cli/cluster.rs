//! `strata cluster …`: clusterconfig against an agent. `create` is here; administering
//! the cluster once it exists is in [`super::cluster_admin`].

use serde_json::json;

use super::agent_args::{ClusterArgs, ClusterCommand};
use super::apply::hooks_failed;
use super::args::Format;
use super::cluster_admin as admin;
use super::connect::{connect, unexpected};
use super::output::Output;
use super::{CliError, Outcome};
use crate::mesh::{Request, Response};

/// Runs `strata cluster`.
pub fn run(args: ClusterArgs, out: &Output) -> Result<Outcome, CliError> {
    match args.command {
        ClusterCommand::Create { name, target } => {
            let mut client = connect(&target)?;
            match client.request(Request::ClusterCreate { name: name.clone() })? {
                Response::Applied {
                    change_set,
                    running,
                } => {
                    match out.format {
                        Format::Json => out.json(&json!({ "cluster": name, "machine": client.machine, "change_set": change_set, "running": running })),
                        _ => out.print(&format!(
                            "new cluster committed: {name}, with {} in Main_Group (change set {})\n",
                            client.machine, change_set.id
                        )),
                    }
                    // Its effective config may have changed and run hooks: report them as apply does.
                    hooks_failed(&change_set, &running).map_or(Ok(Outcome::Ok), Err)
                }
                other => Err(unexpected(other)),
            }
        }
        ClusterCommand::Passwd {
            passphrase_file,
            target,
        } => admin::passwd(passphrase_file.as_deref(), &target, out),
        ClusterCommand::Setname { name, target } => admin::setname(&name, &target, out),
        ClusterCommand::Addgroup { group, target } => admin::addgroup(&group, &target, out),
        ClusterCommand::Setgroup {
            machine,
            group,
            target,
        } => admin::setgroup(&machine, &group, &target, out),
        ClusterCommand::Renamegroup { old, new, target } => {
            admin::renamegroup(&old, &new, &target, out)
        }
        ClusterCommand::Deletegroup {
            group,
            move_to,
            target,
        } => admin::deletegroup(&group, move_to.as_deref(), &target, out),
        ClusterCommand::Prepjoin(p) => admin::prepjoin(p.command, out),
    }
}
