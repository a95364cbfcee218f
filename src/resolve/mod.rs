//! Layering: the effective config of each machine, with where each section comes from.
//!
//! The effective value of section S on machine M in group G is M's S if M defines it,
//! else G's S, else the cluster's S, else the schema's factory default. See
//! [`crate::model::Level`] for the override rule's edge cases.
//!
//! One engine ([`resolve_in`] over a chain of [`Layer`]s) serves both kinds of input: a
//! parsed repo, whose definitions carry their file and span (validate, show, where,
//! export-xml), and store entries ([`entries`]: plan, and the agent's running config).
//! The catalogue is always passed in, so every caller resolves with the same sections
//! and factory defaults.

pub mod entries;
mod refs;

use std::collections::BTreeMap;

use crate::config::{ModeDecl, Repo, SectionDecl};
use crate::model::{Mode, Node};
use crate::schema::{Catalogue, SectionSchema};
pub use refs::{check_references, entry_reference_problems};

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

/// One mode's definitions, as layering reads them.
pub trait Layer<'a> {
    /// What a definition carries besides its node: where it was written, or which mode
    /// defined it.
    type Def: Copy;

    /// The mode (its level decides which sections it may define).
    fn mode(&self) -> &Mode;

    /// The section called `name`, if this mode defines it.
    fn get(&self, name: &str) -> Option<(&'a Node, Self::Def)>;
}

impl<'r> Layer<'r> for &'r ModeDecl {
    type Def = (&'r ModeDecl, &'r SectionDecl);

    fn mode(&self) -> &Mode {
        &self.mode
    }

    fn get(&self, name: &str) -> Option<(&'r Node, Self::Def)> {
        let decl: &'r ModeDecl = self;
        decl.section(name).map(|s| (&s.node, (decl, s)))
    }
}

/// One section resolved along a chain (highest precedence first): the first layer
/// allowed to define it that does, with its definition; else the factory default and
/// `None`. A definition at a level the schema forbids is skipped (validation reports it).
pub fn resolve_in<'a, L: Layer<'a>>(
    chain: &[L],
    schema: &'a SectionSchema,
) -> (&'a Node, Option<L::Def>) {
    chain
        .iter()
        .filter(|layer| schema.allows(layer.mode().level()))
        .find_map(|layer| layer.get(&schema.name))
        .map_or((&schema.default, None), |(node, def)| (node, Some(def)))
}

/// The modes a machine inherits from, highest precedence first: the machine, its group,
/// the cluster. The first of them that defines a section wins.
fn chain<'r>(repo: &'r Repo, machine: &'r ModeDecl) -> Vec<&'r ModeDecl> {
    let mut chain: Vec<&ModeDecl> = vec![machine];
    chain.extend(repo.group(machine.group_name()));
    chain.extend(repo.cluster());
    chain
}

fn in_repo<'r>(chain: &[&'r ModeDecl], schema: &'r SectionSchema) -> EffectiveSection<'r> {
    match resolve_in(chain, schema) {
        (node, Some((decl, s))) => EffectiveSection {
            node,
            origin: Origin::Mode(decl, s),
        },
        (node, None) => EffectiveSection {
            node,
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
        .map(|schema| (schema.name.as_str(), in_repo(&chain, schema)))
        .collect();
    Effective {
        machine,
        group: machine.group_name(),
        sections,
    }
}

/// `section` as mode `decl` has it: its own definition, else what it inherits (a
/// machine from its group and the cluster, a group from the cluster), else the factory
/// default — what the seed's GUI shows at a mode.
pub fn at_mode<'r>(
    repo: &'r Repo,
    decl: &'r ModeDecl,
    schema: &'r SectionSchema,
) -> EffectiveSection<'r> {
    let chain: Vec<&ModeDecl> = match &decl.mode {
        Mode::Machine(_) => chain(repo, decl),
        Mode::Group(_) => std::iter::once(decl).chain(repo.cluster()).collect(),
        Mode::Cluster => vec![decl],
    };
    in_repo(&chain, schema)
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
        if let Origin::Mode(decl, _) = in_repo(&chain(repo, machine), schema).origin
            && let Some(entry) = out.iter_mut().find(|(d, _)| std::ptr::eq(*d, decl))
        {
            entry.1.push(machine);
        }
    }
    out.sort_by_key(|(d, _)| d.mode.level());
    out
}

/// The machines no definition of [`where_defined`]'s answer reaches: those on the
/// section's factory default.
pub fn on_factory_default<'r>(
    repo: &'r Repo,
    defined: &[(&'r ModeDecl, Vec<&'r ModeDecl>)],
) -> Vec<&'r ModeDecl> {
    repo.machines
        .iter()
        .filter(|m| {
            !defined
                .iter()
                .any(|(_, ms)| ms.iter().any(|x| std::ptr::eq(*x, *m)))
        })
        .collect()
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
        assert!(diags.problems().is_empty(), "{:?}", diags.problems());
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
            Some(&"machine:lab4.example.com".parse().unwrap())
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
            Some(&"group:Paris".parse().unwrap())
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
        let shadow = shadowed_by(&repo, &"group:Paris".parse().unwrap(), "dns");
        assert_eq!(shadow.len(), 1);
    }
}
