//! Administering a cluster through an agent: `strata cluster passwd|setname|addgroup|
//! setgroup|renamegroup|renamemachine|deletegroup|prepjoin|disconnect|reconnect|remove`,
//! and `strata confirm` (commit confirmed). Each write is one change set the agent
//! commits (or refuses, with nothing written); the answer says what moved.

use crate::cluster::admin::ADMIN_USER;
use russh::keys::{HashAlg, PublicKey};
use serde::Serialize;

use super::agent_args::{PrepjoinCommand, TargetArgs};
use super::apply::hooks_failed;
use super::args::Format;
use super::connect::{connect, unexpected};
use super::json::{
    CommitJson, ConfirmJson, DeleteGroupJson, GroupJson, MembershipAction, MembershipJson,
    PrepjoinAddJson, PrepjoinHostJson, PrepjoinListJson, RenameGroupJson, RenameMachineJson,
    RolloutJson, SetGroupJson, SetNameJson, UserJson,
};
use super::output::Output;
use super::passphrase::new_passphrase;
use super::{CliError, Failure, Outcome};
use crate::model::{GroupName, Key, MachineName, Mode};
use crate::protocol::status::PendingEntry;
use crate::protocol::{Request, Response, Secret};
use crate::state::ChangeSetSummary;

/// `cluster disconnect|reconnect|remove MACHINE`.
pub fn membership(
    target: &TargetArgs,
    request: Request,
    member: &MachineName,
    out: &Output,
) -> Result<Outcome, CliError> {
    let action = match request {
        Request::Disconnect { .. } => MembershipAction::Disconnected,
        Request::Reconnect { .. } => MembershipAction::Reconnected,
        _ => MembershipAction::Removed,
    };
    let verb = action.word();
    commit(
        target,
        request,
        out,
        Report {
            done: &|_| format!("{member} {verb}"),
            unchanged: &format!("{member} was {verb} already"),
            json: MembershipJson {
                member: member.to_string(),
                action,
            },
        },
    )
}

/// A group name from the command line.
pub fn group(name: &str) -> Result<GroupName, CliError> {
    GroupName::new(name).map_err(|e| {
        Failure::new(
            format!("`{name}` is not a group name: {e}"),
            "group names are letters, digits, `_`, `-` and `.`",
        )
    })
}

/// A machine name from the command line.
pub fn machine(name: &str) -> Result<MachineName, CliError> {
    MachineName::new(name).map_err(|e| {
        Failure::new(
            format!("`{name}` is not a machine name: {e}"),
            "machine names are host names such as lab1.example.com",
        )
    })
}

/// What a command prints once the agent answers.
pub(super) struct Report<'a, T> {
    /// The human line for a committed change set, from its summary.
    pub done: &'a dyn Fn(&ChangeSetSummary) -> String,
    /// The human line when there was nothing to change.
    pub unchanged: &'a str,
    /// The JSON fields of the command (with `machine`, `change_set` and `running` added).
    pub json: T,
}

/// Sends `request` and reports the change set it committed.
pub(super) fn commit<T: Serialize>(
    target: &TargetArgs,
    request: Request,
    out: &Output,
    report: Report<'_, T>,
) -> Result<Outcome, CliError> {
    let mut client = connect(target)?;
    let mut json = CommitJson {
        machine: client.machine.clone(),
        change_set: None,
        running: None,
        what: report.json,
    };
    match client.request(request)? {
        Response::Applied {
            change_set,
            running,
        } => {
            match out.format {
                Format::Json => {
                    json.change_set = Some(change_set.clone());
                    json.running = Some(running.clone());
                    out.json(&json);
                }
                _ => out.print(&format!(
                    "{} (change set {})\n",
                    (report.done)(&change_set),
                    change_set.id
                )),
            }
            // Its effective config may have changed and run hooks: report them as apply does.
            hooks_failed(&change_set, &running).map_or(Ok(Outcome::Ok), Err)
        }
        Response::Unchanged => {
            match out.format {
                Format::Json => out.json(&json),
                _ => out.print(&format!("nothing to change: {}\n", report.unchanged)),
            }
            Ok(Outcome::Ok)
        }
        other => Err(unexpected(other)),
    }
}

/// The machines whose membership a change set wrote.
fn machines_of(cs: &ChangeSetSummary) -> Vec<String> {
    cs.keys
        .iter()
        .filter_map(|k| match k {
            Key::Machine(m) => Some(m.to_string()),
            _ => None,
        })
        .collect()
}

/// The sections a change set wrote at group `g`.
fn sections_at(cs: &ChangeSetSummary, g: &GroupName) -> Vec<String> {
    cs.keys
        .iter()
        .filter_map(|k| match k {
            Key::Section {
                mode: Mode::Group(at),
                section,
            } if at == g => Some(section.to_string()),
            _ => None,
        })
        .collect()
}

/// `a, b`, or `none`.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// `strata cluster passwd [USER]`.
pub fn passwd(
    user: &str,
    file: Option<&std::path::Path>,
    target: &TargetArgs,
    out: &Output,
) -> Result<Outcome, CliError> {
    let passphrase = Secret(new_passphrase(file)?);
    let done = if user == ADMIN_USER {
        "cluster admin passphrase set for user admin (administrator)".to_owned()
    } else {
        format!("passphrase set for user {user}")
    };
    let report = Report {
        done: &|_| done.clone(),
        unchanged: "the passphrase is already set",
        json: UserJson {
            user: user.to_owned(),
        },
    };
    let user = (user != ADMIN_USER).then(|| user.to_owned());
    commit(
        target,
        Request::ClusterPasswd { passphrase, user },
        out,
        report,
    )
}

/// `strata cluster setname`.
pub fn setname(name: &str, target: &TargetArgs, out: &Output) -> Result<Outcome, CliError> {
    let report = Report {
        done: &|_| format!("cluster renamed to {name}"),
        unchanged: &format!("the cluster is already named {name}"),
        json: SetNameJson {
            cluster: name.to_owned(),
        },
    };
    let request = Request::SetName {
        name: name.to_owned(),
    };
    commit(target, request, out, report)
}

/// `strata cluster addgroup`.
pub fn addgroup(name: &str, target: &TargetArgs, out: &Output) -> Result<Outcome, CliError> {
    let name = group(name)?;
    let report = Report {
        done: &|_| format!("group {name} added"),
        unchanged: &format!("the cluster already has group {name}"),
        json: GroupJson {
            group: name.to_string(),
        },
    };
    commit(
        target,
        Request::AddGroup { name: name.clone() },
        out,
        report,
    )
}

/// `strata cluster setgroup`.
pub fn setgroup(
    machine_name: &str,
    group_name: &str,
    target: &TargetArgs,
    out: &Output,
) -> Result<Outcome, CliError> {
    let (m, g) = (machine(machine_name)?, group(group_name)?);
    let report = Report {
        done: &|_| format!("{m} moved to group {g}"),
        unchanged: &format!("{m} is already in group {g}"),
        json: SetGroupJson {
            machine_moved: m.to_string(),
            group: g.to_string(),
        },
    };
    let request = Request::SetGroup {
        machine: m.clone(),
        group: g.clone(),
    };
    commit(target, request, out, report)
}

/// `strata cluster renamegroup`.
pub fn renamegroup(
    old: &str,
    new: &str,
    target: &TargetArgs,
    out: &Output,
) -> Result<Outcome, CliError> {
    let (from, to) = (group(old)?, group(new)?);
    let done = |cs: &ChangeSetSummary| {
        format!(
            "group {from} renamed to {to}; machines moved: {}; sections moved: {}",
            list(&machines_of(cs)),
            list(&sections_at(cs, &to))
        )
    };
    let report = Report {
        done: &done,
        unchanged: &format!("group {to} is already so named"),
        json: RenameGroupJson {
            from: from.to_string(),
            to: to.to_string(),
        },
    };
    let request = Request::RenameGroup {
        from: from.clone(),
        to: to.clone(),
    };
    commit(target, request, out, report)
}

/// `strata cluster renamemachine`.
pub fn renamemachine(
    from: MachineName,
    to: MachineName,
    address: Option<String>,
    target: &TargetArgs,
    out: &Output,
) -> Result<Outcome, CliError> {
    let done = |cs: &ChangeSetSummary| {
        let mine = Mode::Machine(to.clone());
        let moved: Vec<String> = cs
            .keys
            .iter()
            .filter_map(|k| match k {
                Key::Section { mode, section } if *mode == mine => Some(section.to_string()),
                _ => None,
            })
            .collect();
        format!(
            "machine {from} renamed to {to}; sections moved: {}; its agent restarts under the new name",
            list(&moved)
        )
    };
    let report = Report {
        done: &done,
        unchanged: &format!("machine {to} is already so named"),
        json: RenameMachineJson {
            from: from.to_string(),
            to: to.to_string(),
            address: address.clone(),
        },
    };
    let request = Request::RenameMachine {
        machine: from.clone(),
        to: to.clone(),
        address,
    };
    commit(target, request, out, report)
}

/// `strata cluster deletegroup`.
pub fn deletegroup(
    name: &str,
    move_to: Option<&str>,
    target: &TargetArgs,
    out: &Output,
) -> Result<Outcome, CliError> {
    let name = group(name)?;
    let move_to = move_to.map(group).transpose()?;
    let done = |cs: &ChangeSetSummary| {
        let mut line = format!(
            "group {name} deleted; sections removed: {}",
            list(&sections_at(cs, &name))
        );
        if let Some(to) = &move_to {
            line.push_str(&format!(
                "; machines moved to {to}: {}",
                list(&machines_of(cs))
            ));
        }
        line
    };
    let report = Report {
        done: &done,
        unchanged: &format!("there is no group {name}"),
        json: DeleteGroupJson {
            group: name.to_string(),
            move_to: move_to.as_ref().map(ToString::to_string),
        },
    };
    let request = Request::DeleteGroup {
        name: name.clone(),
        move_to: move_to.clone(),
    };
    commit(target, request, out, report)
}

/// `strata cluster prepjoin …`.
pub fn prepjoin(command: PrepjoinCommand, out: &Output) -> Result<Outcome, CliError> {
    match command {
        PrepjoinCommand::Add {
            host,
            serial,
            key,
            target,
        } => {
            let host = machine(&host)?;
            let report = Report {
                done: &|_| {
                    format!(
                        "{host} registered to join (serial {}, host key {})",
                        serial.trim(),
                        fingerprint(&key)
                    )
                },
                unchanged: &format!("{host} is already registered with that serial and key"),
                json: PrepjoinAddJson {
                    host: host.to_string(),
                    serial: serial.trim().to_owned(),
                    key: key.trim().to_owned(),
                },
            };
            let request = Request::PrepjoinAdd {
                host: host.clone(),
                serial: serial.clone(),
                key: key.clone(),
            };
            commit(&target, request, out, report)
        }
        PrepjoinCommand::Delete { host, target } => {
            let host = machine(&host)?;
            let report = Report {
                done: &|_| format!("{host} is no longer registered to join"),
                unchanged: &format!("{host} is not registered to join"),
                json: PrepjoinHostJson {
                    host: host.to_string(),
                },
            };
            commit(
                &target,
                Request::PrepjoinDelete { host: host.clone() },
                out,
                report,
            )
        }
        PrepjoinCommand::List { target } => {
            let mut client = connect(&target)?;
            match client.request(Request::PrepjoinList)? {
                Response::PrepjoinList { entries } => {
                    match out.format {
                        Format::Json => out.json(&PrepjoinListJson {
                            machine: client.machine.clone(),
                            entries,
                        }),
                        _ => out.print(&pending_table(&entries)),
                    }
                    Ok(Outcome::Ok)
                }
                other => Err(unexpected(other)),
            }
        }
        PrepjoinCommand::Print { target } => {
            let mut client = connect(&target)?;
            match client.request(Request::PrepjoinPrint)? {
                Response::Prepjoin(me) => {
                    match out.format {
                        Format::Json => out.json(&me),
                        _ => out.print(&format!(
                            "host {}\nserial {}\nkey {}\n\nOn a member: strata cluster prepjoin add {} --serial {} --key '{}'\n",
                            me.host, me.serial, me.key, me.host, me.serial, me.key
                        )),
                    }
                    Ok(Outcome::Ok)
                }
                other => Err(unexpected(other)),
            }
        }
    }
}

/// A host key's SHA256 fingerprint, as OpenSSH prints it.
fn fingerprint(key: &str) -> String {
    PublicKey::from_openssh(key.trim()).map_or_else(
        |_| "(unreadable)".to_owned(),
        |k| k.fingerprint(HashAlg::Sha256).to_string(),
    )
}

/// The pending-join list as `prepjoin list` prints it: one aligned line per machine.
fn pending_table(entries: &[PendingEntry]) -> String {
    if entries.is_empty() {
        return "no machines are registered to join; add one with `strata cluster prepjoin add`\n"
            .to_owned();
    }
    let rows = entries
        .iter()
        .map(|e| format!("{}\t{}\t{}", e.host, e.serial, fingerprint(&e.key)));
    format!(
        "{} registered to join:\n{}",
        crate::text::count(entries.len(), "machine"),
        crate::text::columns(std::iter::once("HOST\tSERIAL\tHOST KEY".to_owned()).chain(rows))
    )
}

/// `strata confirm [ID]`: keeps a change set applied on trial.
pub fn confirm(args: super::agent_args::ConfirmArgs, out: &Output) -> Result<Outcome, CliError> {
    let trial_of = |cs: &ChangeSetSummary| match &cs.meta.confirm {
        Some(crate::model::Confirm::Confirms { version }) => {
            crate::model::ChangeSetId::of(version).to_string()
        }
        _ => String::new(),
    };
    let done = |cs: &ChangeSetSummary| {
        format!(
            "confirmed change set {}: no machine reverts it once this reaches it",
            trial_of(cs)
        )
    };
    let unchanged = format!(
        "change set {} is confirmed already",
        args.id.as_deref().unwrap_or("on trial")
    );
    let report = Report {
        done: &done,
        unchanged: &unchanged,
        json: ConfirmJson {
            trial: args.id.clone(),
        },
    };
    commit(
        &args.target,
        Request::Confirm {
            id: args.id.clone(),
        },
        out,
        report,
    )
}

/// `strata rollout halt|promote|undo [ID]`: steers a staged rollout.
pub fn rollout(
    command: super::agent_args::RolloutCommand,
    out: &Output,
) -> Result<Outcome, CliError> {
    use super::agent_args::RolloutCommand;
    use crate::protocol::RolloutAction;
    let (id, action, target, verb) = match command {
        RolloutCommand::Halt { id, reason, target } => {
            (id, RolloutAction::Halt { reason }, target, "halted")
        }
        RolloutCommand::Promote { id, target } => (id, RolloutAction::Promote, target, "promoted"),
        RolloutCommand::Undo { id, target } => (id, RolloutAction::Undo, target, "undone"),
    };
    let done = |cs: &ChangeSetSummary| {
        let first = cs.meta.message.lines().next().unwrap_or_default();
        format!("rollout {verb}: {first}")
    };
    let report = Report {
        done: &done,
        unchanged: "the rollout is already so",
        json: RolloutJson {
            rollout: id.clone(),
            action: verb.to_owned(),
        },
    };
    commit(&target, Request::Rollout { id, action }, out, report)
}
