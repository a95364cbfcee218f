//! The seed's naming rules for a cluster's machines, as warnings: "all appliances in a
//! cluster need to use the exact same IP interface names", and centralized management
//! uses the machine's main hostname (`sethostname`), so a machine's `hostname` section
//! should say the name the cluster knows it by. Whether those hostnames resolve is
//! `check`'s to say, on a member (`crate::protocol::consistency::resolution_warnings`).
//! And a rename (`machine "NEW" was="OLD"`) must name a machine the repo left behind.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Diagnostics, ModeDecl, Problem, Repo};

/// The section of a machine's IP interfaces, and of its main hostname.
const INTERFACES: &str = "interfaces";
const HOSTNAME: &str = "hostname";

/// Both rules, and that renames (`was=`) name a machine the repo no longer declares.
pub fn check(repo: &Repo, diags: &mut Diagnostics) {
    interface_names(repo, diags);
    for machine in &repo.machines {
        hostname(machine, diags);
    }
    renames(repo, diags);
}

/// `was="OLD"` renames member OLD: OLD must be a machine name, not the machine's own,
/// not one the repo still declares, and not claimed by two machines.
fn renames(repo: &Repo, diags: &mut Diagnostics) {
    let declared: BTreeSet<&str> = repo.machines.iter().filter_map(|m| m.mode.name()).collect();
    let mut claimed: BTreeMap<&str, &ModeDecl> = BTreeMap::new();
    for machine in &repo.machines {
        let (Some(name), Some(was)) = (machine.mode.name(), &machine.was) else {
            continue;
        };
        let problem = |message: String, label: &str, help: String| {
            Problem::error("strata::repo::rename", message)
                .at(&machine.file, was.span, label.to_owned())
                .help(help)
        };
        if let Err(e) = crate::model::MachineName::new(&was.value) {
            diags.push(problem(
                format!("`was=\"{}\"` is not a machine name: {e}", was.value),
                "not a machine name",
                "give the name the machine had before, as the cluster knows it".into(),
            ));
        } else if was.value == name {
            diags.push(problem(
                format!("machine `{name}` says it was itself"),
                "its own name",
                "remove `was=`: it names the machine's previous name, for a rename".into(),
            ));
        } else if declared.contains(was.value.as_str()) {
            diags.push(problem(
                format!("machine `{name}` was `{}`, which the repo still declares", was.value),
                "declared too",
                format!(
                    "a rename moves the member `{}` to `{name}`: remove the `machine \"{}\"` node, and move its settings here",
                    was.value, was.value
                ),
            ));
        } else if let Some(first) = claimed.insert(&was.value, machine) {
            diags.push(problem(
                format!(
                    "machines `{}` and `{name}` both say they were `{}`",
                    first.mode.name().unwrap_or_default(),
                    was.value
                ),
                "claimed twice",
                "one machine is renamed: remove the other's `was=`".into(),
            ));
        }
    }
}

/// The names of the IP interfaces `machine` declares, when it defines `interfaces`.
fn names_of(machine: &ModeDecl) -> Option<BTreeSet<&str>> {
    let section = machine.section(INTERFACES)?;
    Some(
        section
            .node
            .children
            .iter()
            .filter(|c| c.name == "interface")
            .filter_map(|c| c.args.first()?.as_str())
            .collect(),
    )
}

/// Machines whose interface names differ are warned about once, naming each set of names
/// and its machines, at the first machine of the least common set. Machines that define
/// no `interfaces` say nothing of their names and are left out.
fn interface_names(repo: &Repo, diags: &mut Diagnostics) {
    let mut by: BTreeMap<BTreeSet<&str>, Vec<&ModeDecl>> = BTreeMap::new();
    for machine in &repo.machines {
        if let Some(names) = names_of(machine) {
            by.entry(names).or_default().push(machine);
        }
    }
    if by.len() < 2 {
        return;
    }
    let list = |names: &BTreeSet<&str>| match names.is_empty() {
        true => "no interface".to_owned(),
        false => names.iter().copied().collect::<Vec<_>>().join(", "),
    };
    let described = by
        .iter()
        .map(|(names, machines)| {
            let mut machines: Vec<&str> = machines.iter().filter_map(|m| m.mode.name()).collect();
            machines.sort_unstable();
            format!("{} on {}", list(names), machines.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let Some((names, machines)) = by.iter().min_by_key(|(_, machines)| machines.len()) else {
        return;
    };
    let Some(section) = machines.first().and_then(|m| m.section(INTERFACES)) else {
        return;
    };
    diags.push(
        Problem::warning(
            "strata::repo::interface-names",
            format!("the machines' IP interface names differ: {described}"),
        )
        .at(
            &section.file,
            section.node.name_span,
            format!("{} here", list(names)),
        )
        .help("the seed's rule: all appliances in a cluster use the exact same IP interface names (cluster and group settings, listeners among them, name interfaces); rename the interfaces so that every machine has the same names"),
    );
}

/// A machine whose `hostname` section says another name than the machine's is warned
/// about: the cluster knows the machine by its name, the appliance by its main hostname.
/// DNS names compare without case and without a trailing dot.
fn hostname(machine: &ModeDecl, diags: &mut Diagnostics) {
    let (Some(name), Some(section)) = (machine.mode.name(), machine.section(HOSTNAME)) else {
        return;
    };
    let Some(said) = section.node.args.first().and_then(|a| a.as_str()) else {
        return;
    };
    let canonical = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    if canonical(said) == canonical(name) {
        return;
    }
    diags.push(
        Problem::warning(
            "strata::repo::hostname-differs",
            format!("machine `{name}` sets its hostname to `{said}`"),
        )
        .at(
            &section.file,
            section.node.arg_span(0),
            format!("not `{name}`"),
        )
        .help(format!(
            "centralized management knows a machine by its main hostname (`sethostname`): name the machine after its hostname, or set `hostname \"{name}\"`"
        )),
    );
}
