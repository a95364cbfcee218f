//! `strata cluster …`: clusterconfig against an agent. `create` is here; administering
//! the cluster once it exists is in [`super::cluster_admin`].

use super::agent_args::{ClusterArgs, ClusterCommand, TargetArgs};
use super::apply::hooks_failed;
use super::args::Format;
use super::cluster_admin as admin;
use super::cluster_mesh as mesh;
use super::connect::{connect, unexpected};
use super::json::{CommitJson, SetNameJson};
use super::output::Output;
use super::{CliError, Outcome};
use crate::protocol::{Request, Response};

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
                        Format::Json => out.json(&CommitJson {
                            machine: client.machine.clone(),
                            change_set: Some(change_set.clone()),
                            running: Some(running.clone()),
                            what: SetNameJson {
                                cluster: name.clone(),
                            },
                        }),
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
        ClusterCommand::Repair {
            address,
            fingerprint,
            known_hosts,
            state_dir,
        } => {
            let fingerprint = match (fingerprint, known_hosts) {
                (Some(f), _) => f,
                (None, Some(path)) => mesh::fingerprint_in_known_hosts(&address, &path)?,
                (None, None) => unreachable!("clap requires --fingerprint or --known-hosts"),
            };
            super::repair::run(&address, &fingerprint, &state_dir, out)
        }
        ClusterCommand::Join {
            address,
            fingerprint,
            known_hosts,
            group,
            passphrase_file,
            pre_shared,
            yes,
            state_dir,
        } => {
            let target = TargetArgs {
                state_dir: Some(state_dir),
                ..TargetArgs::default()
            };
            let fingerprint = match (fingerprint, known_hosts) {
                (Some(f), _) => f,
                (None, Some(path)) => mesh::fingerprint_in_known_hosts(&address, &path)?,
                (None, None) => unreachable!("clap requires --fingerprint or --known-hosts"),
            };
            mesh::join(
                mesh::JoinArgs {
                    address: &address,
                    fingerprint: &fingerprint,
                    group,
                    passphrase_file: passphrase_file.as_deref(),
                    pre_shared,
                    yes,
                    target: &target,
                },
                out,
            )
        }
        ClusterCommand::List { target } => mesh::list(&target, out),
        ClusterCommand::Connstatus { target } => mesh::connstatus(&target, out),
        ClusterCommand::Disconnect { machine, target } => admin::membership(
            &target,
            Request::Disconnect {
                machine: machine.clone(),
            },
            &machine,
            out,
        ),
        ClusterCommand::Reconnect { machine, target } => admin::membership(
            &target,
            Request::Reconnect {
                machine: machine.clone(),
            },
            &machine,
            out,
        ),
        ClusterCommand::Remove { machine, target } => admin::membership(
            &target,
            Request::Remove {
                machine: machine.clone(),
            },
            &machine,
            out,
        ),
        ClusterCommand::Passwd {
            account,
            passphrase_file,
            target,
        } => admin::passwd(&account, passphrase_file.as_deref(), &target, out),
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
        ClusterCommand::Renamemachine {
            old,
            new,
            address,
            target,
        } => admin::renamemachine(old, new, address, &target, out),
        ClusterCommand::Deletegroup {
            group,
            move_to,
            target,
        } => admin::deletegroup(&group, move_to.as_deref(), &target, out),
        ClusterCommand::Prepjoin(p) => admin::prepjoin(p.command, out),
    }
}
