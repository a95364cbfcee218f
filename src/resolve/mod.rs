//! Layering: the effective config of each machine, with where each section comes from.
//!
//! The effective value of section S on machine M in group G is M's S if M defines it,
//! else G's S, else the cluster's S, else the schema's factory default. See
//! [`crate::model::Level`] for the override rule's edge cases.

mod refs;

use std::collections::BTreeMap;

use crate::config::{ModeDecl, Repo, SectionDecl};
use crate::model::{Mode, Node};
use crate::schema::{Catalogue, SectionSchema};
pub use refs::check_references;

/// Where an effective section comes from.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'r> {
    /// Defined at a mode (the cluster, the machine's group, or the machine).
    Mode(&'r ModeDecl, &'r SectionDecl),
    /// No mode defines it: the schema's factory default.
    Factory,
}

impl Origin<'_> {
    /// The defining mode, if any.
    pub fn mode(&self) -> Option<&Mode> {
        match self {
            Origin::Mode(decl, _) => Some(&decl.mode),
            Origin::Factory => None,
        }
    }

    /// "group:Paris (groups/paris.kdl:3)" or "factory default".
    pub fn describe(&self) -> String {
        match self {
            Origin::Mode(decl, section) => format!("{} ({})", decl.mode, section.location()),
            Origin::Factory => "factory default".into(),
        }
    }
}

/// One section of a machine's effective config.
#[derive(Debug, Clone, Copy)]
pub struct EffectiveSection<'r> {
    /// The section's contents.
    pub node: &'r Node,
    /// Where it comes from.
    pub origin: Origin<'r>,
}

/// The effective config of one machine: every catalogue section, resolved.
#[derive(Debug, Clone)]
pub struct Effective<'r> {
    /// The machine.
    pub machine: &'r ModeDecl,
    /// Its group's name.
    pub group: &'r str,
    /// Every section of the catalogue, by name.
    pub sections: BTreeMap<&'r str, EffectiveSection<'r>>,
}

/// The modes a machine inherits from, highest precedence first: the machine, its group,
/// the cluster. The first of them that defines a section wins.
fn chain<'r>(repo: &'r Repo, machine: &'r ModeDecl) -> Vec<&'r ModeDecl> {
    let mut chain: Vec<&ModeDecl> = vec![machine];
    chain.extend(repo.group(machine.group_name()));
    chain.extend(repo.cluster());
    chain
}

/// One section resolved along a chain: the first mode allowed to define it that does,
/// else the factory default.
fn resolve_in<'r>(chain: &[&'r ModeDecl], schema: &'r SectionSchema) -> EffectiveSection<'r> {
    let found = chain.iter().find_map(|decl| {
        let allowed = schema.allows(decl.mode.level());
        decl.section(&schema.name)
            .filter(|_| allowed)
            .map(|s| (*decl, s))
    });
    match found {
        Some((decl, s)) => EffectiveSection {
            node: &s.node,
            origin: Origin::Mode(decl, s),
        },
        None => EffectiveSection {
            node: &schema.default,
            origin: Origin::Factory,
        },
    }
}

/// Resolves one machine's effective config. Sections the catalogue does not know are
/// skipped (validation reports them).
pub fn effective<'r>(
    repo: &'r Repo,
    catalogue: &'r Catalogue,
    machine: &'r ModeDecl,
) -> Effective<'r> {
    let chain = chain(repo, machine);
    let sections = catalogue
        .sections
        .values()
        .map(|schema| (schema.name.as_str(), resolve_in(&chain, schema)))
        .collect();
    Effective {
        machine,
        group: machine.group_name(),
        sections,
    }
}

/// The modes that define `section`, highest level first, each with the machines on
/// which that definition is the effective one (clustershow).
pub fn where_defined<'r>(
    repo: &'r Repo,
    catalogue: &'r Catalogue,
    section: &str,
) -> Vec<(&'r ModeDecl, Vec<&'r ModeDecl>)> {
    let mut out: Vec<(&ModeDecl, Vec<&ModeDecl>)> = repo
        .modes()
        .filter(|d| d.section(section).is_some())
        .map(|d| (d, Vec::new()))
        .collect();
    let Some(schema) = catalogue.get(section) else {
        return out;
    };
    for machine in &repo.machines {
        // Only this section is resolved, not the machine's whole effective config.
        if let Origin::Mode(decl, _) = resolve_in(&chain(repo, machine), schema).origin
            && let Some(entry) = out.iter_mut().find(|(d, _)| std::ptr::eq(*d, decl))
        {
            entry.1.push(machine);
        }
    }
    out.sort_by_key(|(d, _)| d.mode.level());
    out
}

/// The modes below `mode` that define `section` themselves, so a change to `mode`'s
/// version does not reach them (the seed's "will not affect the following groups and
/// machines" notice).
pub fn shadowed_by<'r>(repo: &'r Repo, mode: &Mode, section: &str) -> Vec<&'r ModeDecl> {
    let below = |d: &&ModeDecl| match (mode, &d.mode) {
        (Mode::Cluster, Mode::Group(_) | Mode::Machine(_)) => true,
        (Mode::Group(g), Mode::Machine(_)) => d.group_name() == g,
        _ => false,
    };
    repo.modes()
        .filter(below)
        .filter(|d| d.section(section).is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostics, SourceFile, parse_files};

    const REPO: &str = r#"
cluster "americas" {
    dns { server "10.0.0.53"; }
    text-resources { resource "disclaimer" "Scanned." }
}
group "Main_Group"
group "Paris" {
    dns { server "192.0.2.53"; }
    text-resources
}
machine "lab1.example.com"
machine "lab3.example.com" group="Paris"
machine "lab4.example.com" group="Paris" {
    dns { server "192.0.2.99"; }
}
"#;

    fn repo() -> Repo {
        let mut diags = Diagnostics::default();
        let repo = parse_files(vec![SourceFile::new("repo.kdl", REPO)], &mut diags);
        assert!(diags.problems.is_empty(), "{:?}", diags.problems);
        repo
    }

    fn dns_server<'a>(eff: &'a Effective) -> &'a str {
        eff.sections["dns"].node.children[0].args[0]
            .as_str()
            .unwrap()
    }

    #[test]
    fn lower_levels_override_higher_ones_whole_section() {
        let (repo, cat) = (repo(), Catalogue::builtin());
        let at = |m: &str| effective(&repo, &cat, repo.machine(m).unwrap());
        assert_eq!(dns_server(&at("lab1.example.com")), "10.0.0.53");
        assert_eq!(dns_server(&at("lab3.example.com")), "192.0.2.53");
        assert_eq!(dns_server(&at("lab4.example.com")), "192.0.2.99");
        assert_eq!(
            at("lab4.example.com").sections["dns"].origin.mode(),
            Some(&Mode::Machine("lab4.example.com".into()))
        );
    }

    #[test]
    fn an_empty_section_overrides_with_nothing_but_absence_inherits() {
        let (repo, cat) = (repo(), Catalogue::builtin());
        let lab1 = effective(&repo, &cat, repo.machine("lab1.example.com").unwrap());
        let lab3 = effective(&repo, &cat, repo.machine("lab3.example.com").unwrap());
        // Main_Group has no text-resources node: lab1 inherits the cluster's.
        assert_eq!(lab1.sections["text-resources"].node.children.len(), 1);
        assert_eq!(
            lab1.sections["text-resources"].origin.mode(),
            Some(&Mode::Cluster)
        );
        // Paris defines it empty: lab3 gets nothing, from Paris.
        assert!(lab3.sections["text-resources"].node.children.is_empty());
        assert_eq!(
            lab3.sections["text-resources"].origin.mode(),
            Some(&Mode::Group("Paris".into()))
        );
    }

    #[test]
    fn sections_no_mode_defines_take_the_factory_default() {
        let (repo, cat) = (repo(), Catalogue::builtin());
        let lab1 = effective(&repo, &cat, repo.machine("lab1.example.com").unwrap());
        let interfaces = &lab1.sections["interfaces"];
        assert!(matches!(interfaces.origin, Origin::Factory));
        assert_eq!(interfaces.node, &cat.get("interfaces").unwrap().default);
    }

    #[test]
    fn where_and_shadowing_follow_the_layers() {
        let (repo, cat) = (repo(), Catalogue::builtin());
        let defined = where_defined(&repo, &cat, "dns");
        let reach: Vec<(String, usize)> = defined
            .iter()
            .map(|(d, ms)| (d.mode.to_string(), ms.len()))
            .collect();
        assert_eq!(
            reach,
            [
                ("cluster".to_owned(), 1),
                ("group:Paris".to_owned(), 1),
                ("machine:lab4.example.com".to_owned(), 1)
            ]
        );
        let shadow: Vec<String> = shadowed_by(&repo, &Mode::Cluster, "dns")
            .iter()
            .map(|d| d.mode.to_string())
            .collect();
        assert_eq!(shadow, ["group:Paris", "machine:lab4.example.com"]);
        let shadow = shadowed_by(&repo, &Mode::Group("Paris".into()), "dns");
        assert_eq!(shadow.len(), 1);
    }
}
