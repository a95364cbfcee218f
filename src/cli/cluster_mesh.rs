//! `strata cluster join | list | connstatus | disconnect | reconnect | remove`: the mesh
//! operations of clusterconfig, against the local agent (or `--target`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::agent_args::TargetArgs;
use super::args::Format;
use super::connect::{connect, unexpected};
use super::json::JoinJson;
use super::output::Output;
use super::passphrase::existing_passphrase;
use super::{CliError, Failure, Outcome};
use crate::model::GroupName;
use crate::protocol::status::{ClusterListing, ConnStatus};
use crate::protocol::{Request, Response, Secret};

/// What `cluster join` was told.
pub struct JoinArgs<'a> {
    /// The member, `HOST[:PORT]`.
    pub address: &'a str,
    /// The member's host-key fingerprint.
    pub fingerprint: &'a str,
    /// The group to join.
    pub group: Option<GroupName>,
    /// The passphrase file, if any.
    pub passphrase_file: Option<&'a Path>,
    /// Join with the pre-shared host key instead of the passphrase.
    pub pre_shared: bool,
    /// Do not ask before replacing the machine's settings.
    pub yes: bool,
    /// The local agent.
    pub target: &'a TargetArgs,
}

/// `cluster join`.
pub fn join(args: JoinArgs<'_>, out: &Output) -> Result<Outcome, CliError> {
    let passphrase = if args.pre_shared {
        None
    } else {
        Some(Secret(existing_passphrase(
            args.passphrase_file,
            "Cluster admin passphrase: ",
        )?))
    };
    let mut client = connect(args.target)?;
    if !args.yes {
        let warning = format!(
            "joining replaces the clusterable settings of {} with the cluster's (its machine-only \
             sections — interfaces, hostname, … — stay its own)",
            client.machine
        );
        if !std::io::stdin().is_terminal() {
            return Err(Failure::refused(
                warning,
                "run it again with --yes to go ahead",
            ));
        }
        eprint!("{warning}; join? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if !matches!(line.trim(), "y" | "yes") {
            return Err(Failure::refused("not joined", "nothing was changed"));
        }
    }
    let request = Request::ClusterJoin {
        address: args.address.to_owned(),
        fingerprint: args.fingerprint.to_owned(),
        group: args.group,
        passphrase,
    };
    match client.request(request)? {
        Response::Joined {
            cluster,
            member,
            group,
            replaced,
            notes,
        } => {
            match out.format {
                Format::Json => out.json(&JoinJson {
                    joined: cluster.clone(),
                    machine: client.machine.clone(),
                    member: member.clone(),
                    group: group.clone(),
                    replaced: replaced.clone(),
                    notes: notes.clone(),
                }),
                _ => {
                    let mut text = format!(
                        "{} joined cluster {cluster} through {member}, in group {group}\n",
                        client.machine
                    );
                    if !replaced.is_empty() {
                        text.push_str(&format!(
                            "its own settings replaced by the cluster's: {}\n",
                            replaced.join(", ")
                        ));
                    }
                    for n in notes {
                        text.push_str(&format!("note: {n}\n"));
                    }
                    out.print(&text);
                }
            }
            Ok(Outcome::Ok)
        }
        other => Err(unexpected(other)),
    }
}

/// The fingerprint of the one host key `path` (an OpenSSH known_hosts file) records for
/// `member` (`HOST[:PORT]`, port 2222 by default), to pin a join by.
pub fn fingerprint_in_known_hosts(
    member: &str,
    path: &std::path::Path,
) -> Result<String, CliError> {
    let (host, port) =
        crate::protocol::split_host_port(member, crate::config::agent_kdl::DEFAULT_PORT)
            .ok_or_else(|| {
                Failure::new(
                    format!("bad member address `{member}`"),
                    "write HOST[:PORT]",
                )
            })?;
    let keys = russh::keys::known_hosts::known_host_keys_path(&host, port, path).map_err(|e| {
        Failure::new(
            format!("cannot read {}: {e}", path.display()),
            "give an OpenSSH known_hosts file",
        )
    })?;
    match keys.as_slice() {
        [(_, key)] => Ok(key.fingerprint(russh::keys::HashAlg::Sha256).to_string()),
        [] => Err(Failure::new(
            format!("{} records no host key for {member}", path.display()),
            "add the member's key (`ssh-keyscan -p PORT HOST`, checked against the fingerprint its agent prints), or pass --fingerprint",
        )),
        _ => Err(Failure::new(
            format!(
                "{} records {} host keys for {member}",
                path.display(),
                keys.len()
            ),
            "keep one key for the member there, or pass --fingerprint",
        )),
    }
}

/// `cluster list`.
pub fn list(target: &TargetArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(target)?;
    match client.request(Request::ClusterList)? {
        Response::ClusterList(listing) => {
            match out.format {
                Format::Json => out.json(&listing),
                _ => out.print(&render_list(&listing)),
            }
            Ok(Outcome::Ok)
        }
        other => Err(unexpected(other)),
    }
}

/// The seed's LIST: the cluster, then each group and its machines.
pub fn render_list(l: &ClusterListing) -> String {
    let Some(cluster) = &l.cluster else {
        return format!("{} is standalone: in no cluster\n", l.machine);
    };
    let mut text = format!("Cluster {cluster} (as {} sees it)\n", l.machine);
    for g in &l.groups {
        text.push_str(&format!("\nGroup {}:\n", g.name));
        if g.machines.is_empty() {
            text.push_str("    (no machines)\n");
        }
        for m in &g.machines {
            let serial = m.serial.as_deref().unwrap_or("-");
            let mut facts = format!("serial {serial}");
            if let Some(v) = &m.strata_version {
                facts.push_str(&format!(", Strata {v}"));
            }
            if let Some(v) = &m.appliance_version {
                facts.push_str(&format!(", appliance {v}"));
            }
            let mut state = m.reach.as_str().to_owned();
            if m.unmanaged {
                state.push_str(", unmanaged: no repo declares it");
            }
            if let Some(f) = &m.store_failure {
                state.push_str(&format!(
                    ", Degraded: cannot write its store since {} ({})",
                    super::log::utc(f.since_ms),
                    f.error
                ));
            }
            text.push_str(&format!(
                "    {} ({}) {facts}: {state}\n",
                m.name, m.address
            ));
        }
    }
    text
}

/// `cluster connstatus`.
pub fn connstatus(target: &TargetArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(target)?;
    match client.request(Request::ConnStatus)? {
        Response::ConnStatus(status) => {
            match out.format {
                Format::Json => out.json(&status),
                _ => out.print(&render_connstatus(&status)),
            }
            Ok(Outcome::Ok)
        }
        other => Err(unexpected(other)),
    }
}

/// Every link as each machine reports it.
pub fn render_connstatus(s: &ConnStatus) -> String {
    let mut text = String::new();
    for v in &s.views {
        let age = match v.age_ms {
            Some(0) => "now".to_owned(),
            Some(ms) => format!("{:.1} s ago", ms as f64 / 1000.0),
            None => "never reported".to_owned(),
        };
        text.push_str(&format!("{} ({age}):\n", v.machine));
        if v.links.is_empty() {
            text.push_str("    (no links)\n");
        }
        for l in &v.links {
            let rtt = l
                .rtt_ms
                .map(|r| format!(", rtt {r:.1} ms"))
                .unwrap_or_default();
            let mut state = match (&l.via, l.up) {
                (_, true) => format!("up{rtt}"),
                (Some(via), false) => format!("down, routed via {via}"),
                (None, false) => "down, unreachable".to_owned(),
            };
            if let Some(why) = &l.why {
                state.push_str(&format!(" (last dial: {why})"));
            }
            text.push_str(&format!("    -> {}: {state}\n", l.to));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::status::{GroupListing, LinkEntry, LinkView, MachineListing, Reach};

    fn machine(
        name: &str,
        reach: Reach,
        strata: Option<&str>,
        appliance: Option<&str>,
    ) -> MachineListing {
        MachineListing {
            name: name.into(),
            address: format!("{name}:2222"),
            serial: Some(format!("S-{name}")),
            reach,
            unmanaged: false,
            store_failure: None,
            strata_version: strata.map(str::to_owned),
            appliance_version: appliance.map(str::to_owned),
        }
    }

    #[test]
    fn the_list_shows_each_member_s_versions_when_known() {
        let listing = ClusterListing {
            cluster: Some("americas".into()),
            machine: "lab1".into(),
            groups: vec![GroupListing {
                name: "Main_Group".into(),
                machines: vec![
                    machine("lab1", Reach::Local, Some("1.5.0"), Some("15.0.1-416")),
                    machine("lab2", Reach::Disconnected, Some("1.4.2"), None),
                    machine("lab3", Reach::Expected, None, None),
                ],
            }],
        };
        insta::assert_snapshot!(render_list(&listing), @r"
        Cluster americas (as lab1 sees it)

        Group Main_Group:
            lab1 (lab1:2222) serial S-lab1, Strata 1.5.0, appliance 15.0.1-416: local
            lab2 (lab2:2222) serial S-lab2, Strata 1.4.2: disconnected
            lab3 (lab3:2222) serial S-lab3: expected
        ");
    }

    #[test]
    fn connstatus_says_why_the_last_dial_of_a_down_link_failed() {
        let status = ConnStatus {
            machine: "lab1".into(),
            views: vec![LinkView {
                machine: "lab1".into(),
                age_ms: Some(0),
                links: vec![
                    LinkEntry {
                        to: "lab2".into(),
                        up: false,
                        rtt_ms: None,
                        via: None,
                        why: Some("machines of a cluster run the same Strata version (the seed's rule; patch releases mix): lab2 runs 1.5.0, lab1 (this machine) 1.4.2".into()),
                    },
                    LinkEntry {
                        to: "lab3".into(),
                        up: true,
                        rtt_ms: Some(0.4),
                        via: Some("lab3".into()),
                        why: None,
                    },
                ],
            }],
        };
        insta::assert_snapshot!(render_connstatus(&status), @r"
        lab1 (now):
            -> lab2: down, unreachable (last dial: machines of a cluster run the same Strata version (the seed's rule; patch releases mix): lab2 runs 1.5.0, lab1 (this machine) 1.4.2)
            -> lab3: up, rtt 0.4 ms
        ");
    }
}
