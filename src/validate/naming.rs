//! The seed's naming rules for a cluster's machines, as warnings: "all appliances in a
//! cluster need to use the exact same IP interface names", and centralized management
//! uses the machine's main hostname (`sethostname`), so a machine's `hostname` section
//! should say the name the cluster knows it by. Whether those hostnames resolve is
//! `check`'s to say, on a member (`crate::protocol::consistency::resolution_warnings`).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Diagnostics, ModeDecl, Problem, Repo};

/// The section of a machine's IP interfaces, and of its main hostname.
const INTERFACES: &str = "interfaces";
const HOSTNAME: &str = "hostname";

/// Both rules.
pub fn check(repo: &Repo, diags: &mut Diagnostics) {
    interface_names(repo, diags);
    for machine in &repo.machines {
        hostname(machine, diags);
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
