//! References between sections, resolved on each machine's effective config: a cluster
//! listener that names an interface only some machines have is an error that names those
//! machines and the mode that would fix it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::entries::EntryLayers;
use super::{Origin, effective};
use crate::config::{Diagnostics, ModeDecl, Problem, Repo, SectionDecl};
use crate::model::{Node, Value};
use crate::schema::{Catalogue, Reference};

/// One place that refers to something: a field of a node in a section at a mode.
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone)]
struct Site {
    file: String,
    offset: usize,
}

struct Failure<'r> {
    decl: &'r ModeDecl,
    section: &'r SectionDecl,
    node: &'r Node,
    span: miette::SourceSpan,
    value: String,
    reference: &'r Reference,
    machines: Vec<&'r ModeDecl>,
    fixes: BTreeSet<String>,
}

/// Checks every reference on every machine's effective config.
pub fn check_references(repo: &Repo, catalogue: &Catalogue, diags: &mut Diagnostics) {
    let refs: Vec<_> = catalogue
        .sections
        .values()
        .map(|s| (s.name.as_str(), s.references()))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let mut failures: BTreeMap<Site, Failure> = BTreeMap::new();
    let mut key_sets: HashMap<(*const Node, &str), HashSet<String>> = HashMap::new();
    for machine in &repo.machines {
        let eff = effective(repo, catalogue, machine);
        for (section, fields) in &refs {
            let Some(source) = eff.sections.get(section) else {
                continue;
            };
            let Origin::Mode(decl, section_decl) = source.origin else {
                // Factory defaults refer to nothing.
                continue;
            };
            for site in fields {
                let field = site.field;
                let Some(reference) = &field.reference else {
                    continue;
                };
                for node in nodes_at(source.node, &site.path) {
                    let Some((Value::String(value), span)) = site.value_in(node) else {
                        continue;
                    };
                    let span_offset = span.offset();
                    let Some(target) = eff.sections.get(reference.section.as_str()) else {
                        continue;
                    };
                    let keys = key_sets
                        .entry((target.node as *const Node, reference.child.as_str()))
                        .or_insert_with(|| keys_of(catalogue, reference, target.node));
                    if keys.contains(value) {
                        continue;
                    }
                    let site = Site {
                        file: section_decl.file.name.clone(),
                        offset: span_offset,
                    };
                    let failure = failures.entry(site).or_insert_with(|| Failure {
                        decl,
                        section: section_decl,
                        node,
                        span,
                        value: value.clone(),
                        reference,
                        machines: Vec::new(),
                        fixes: BTreeSet::new(),
                    });
                    failure.machines.push(machine);
                    failure.fixes.extend(fix_modes(
                        catalogue,
                        reference,
                        decl,
                        target.origin,
                        machine,
                    ));
                }
            }
        }
    }
    for failure in failures.into_values() {
        diags.push(report(failure));
    }
}

/// The nodes reached by following child names `path` from the section node.
fn nodes_at<'n>(root: &'n Node, path: &[&str]) -> Vec<&'n Node> {
    let mut level = vec![root];
    for name in path {
        level = level
            .into_iter()
            .flat_map(|n| n.children.iter().filter(|c| c.name == *name))
            .collect();
    }
    level
}

fn keys_of(catalogue: &Catalogue, reference: &Reference, target: &Node) -> HashSet<String> {
    let Some(child_spec) = catalogue
        .get(&reference.section)
        .and_then(|s| s.body.children.get(&reference.child))
    else {
        return HashSet::new();
    };
    target
        .children
        .iter()
        .filter(|c| c.name == reference.child)
        .filter_map(|c| child_spec.key_of(c))
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The modes where adding the missing target would fix the reference on `machine`: the
/// mode its target section comes from, or, when it is on the factory default, the
/// referring mode (if the target section may live there) and the machine itself.
fn fix_modes(
    catalogue: &Catalogue,
    reference: &Reference,
    referring: &ModeDecl,
    target_origin: Origin,
    machine: &ModeDecl,
) -> Vec<String> {
    if let Origin::Mode(decl, _) = target_origin {
        return vec![decl.mode.to_string()];
    }
    let mut out = Vec::new();
    let allowed = catalogue
        .get(&reference.section)
        .is_some_and(|s| s.allows(referring.mode.level()));
    if allowed {
        out.push(referring.mode.to_string());
    }
    out.push(machine.mode.to_string());
    out
}

/// The words of an unresolved reference, as `validate` says them: the node that refers,
/// what it refers to, and the machines it is unavailable on.
fn unresolved_words(
    node: &Node,
    reference: &Reference,
    value: &str,
    names: &[&str],
) -> [String; 3] {
    let what = format!("{} \"{}\"", reference.child, value);
    let owner = match node.args.first().and_then(Value::as_str) {
        Some(name) => format!("{} \"{name}\"", node.name),
        None => format!("`{}`", node.name),
    };
    let on = if names.len() == 1 {
        format!("machine {}", names[0])
    } else {
        format!("machines {}", names.join(", "))
    };
    [owner, what, on]
}

/// Every reference on every machine's effective config, resolved from stored entries
/// (what a change set leaves the store holding) instead of a repo: the same rule as
/// [`check_references`], for an agent checking a saved plan. Each unresolved one is
/// said in `validate`'s words (`listener "In" at group:Main_Group refers to interface
/// "NoSuchIface", which is unavailable on machine lab1`).
pub fn entry_reference_problems(layers: &EntryLayers<'_>, catalogue: &Catalogue) -> Vec<String> {
    let refs: Vec<_> = catalogue
        .sections
        .values()
        .map(|s| (s.name.as_str(), s.references()))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    // (mode, section, node, field, value) → the machines it fails on.
    type At<'n> = (String, &'n str, *const Node, usize, String);
    let mut failures: BTreeMap<At<'_>, (&Node, &Reference, Vec<&str>)> = BTreeMap::new();
    for machine in layers.machines() {
        let eff = layers.effective(catalogue, machine);
        for (section, sites) in &refs {
            let Some((node, Some(mode))) = eff.get(section) else {
                continue;
            };
            for (n, site) in sites.iter().enumerate() {
                let Some(reference) = &site.field.reference else {
                    continue;
                };
                let Some((target, _)) = eff.get(reference.section.as_str()) else {
                    continue;
                };
                let keys = keys_of(catalogue, reference, target);
                for holder in nodes_at(node, &site.path) {
                    let Some((Value::String(value), _)) = site.value_in(holder) else {
                        continue;
                    };
                    if keys.contains(value) {
                        continue;
                    }
                    let at = (
                        mode.to_string(),
                        *section,
                        holder as *const Node,
                        n,
                        value.clone(),
                    );
                    failures
                        .entry(at)
                        .or_insert_with(|| (holder, reference, Vec::new()))
                        .2
                        .push(machine);
                }
            }
        }
    }
    failures
        .into_iter()
        .map(|((mode, _, _, _, value), (node, reference, machines))| {
            let [owner, what, on] = unresolved_words(node, reference, &value, &machines);
            format!("{owner} at {mode} refers to {what}, which is unavailable on {on}")
        })
        .collect()
}

fn report(f: Failure) -> Problem {
    let names: Vec<&str> = f.machines.iter().filter_map(|m| m.mode.name()).collect();
    let [owner, what, on] = unresolved_words(f.node, f.reference, &f.value, &names);
    let fixes: Vec<String> = f.fixes.into_iter().collect();
    let help = format!(
        "define {what} in `{}` at {}, or override `{}` below {} for {}",
        f.reference.section,
        fixes.join(" or "),
        f.section.name(),
        f.decl.mode,
        if names.len() == 1 {
            "that machine"
        } else {
            "those machines"
        },
    );
    Problem::error(
        "strata::ref::unresolved",
        format!(
            "{owner} at {} refers to {what}, which is unavailable on {on}",
            f.decl.mode
        ),
    )
    .at(
        &f.section.file,
        f.span,
        format!("{} not in `{}` on {on}", what, f.reference.section),
    )
    .help(help)
}
