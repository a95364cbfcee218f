//! Desired state: the entries a config repo declares, keyed and typed as the store keeps
//! them.

use std::collections::BTreeMap;

use crate::config::Repo;
use crate::model::{
    CatalogueSpec, EntryValue, GroupName, Key, MachineName, Membership, Mode, SectionName,
};
use crate::schema::Catalogue;

/// Key → value, for every entry the repo declares.
pub type Entries = BTreeMap<Key, EntryValue>;

/// The entries a (valid) repo declares with its catalogue: membership — the cluster, its
/// groups, its machines with group and address —, the catalogue — which built-in sections
/// it uses, if it restricts them, and its own section schemas —, and every section of
/// every mode. Names a valid repo cannot hold are skipped (validation reports them).
pub fn desired(repo: &Repo, catalogue: &Catalogue) -> Entries {
    let mut out = Entries::new();
    if let Some(name) = repo.cluster_name() {
        out.insert(
            Key::Cluster,
            EntryValue::Cluster {
                name: name.to_owned(),
            },
        );
    }
    for g in &repo.groups {
        if let Mode::Group(name) = &g.mode {
            out.entry(Key::Group(name.clone()))
                .or_insert(EntryValue::Group);
        }
    }
    for m in &repo.machines {
        let (Mode::Machine(name), Ok(group)) = (&m.mode, GroupName::new(m.group_name())) else {
            continue;
        };
        out.entry(Key::Machine(name.clone())).or_insert_with(|| {
            let mut value = Membership::declared(group, m.address(), m.serial.clone());
            value.was = m
                .was
                .as_ref()
                .and_then(|w| MachineName::new(&w.value).ok())
                .map(Box::new);
            EntryValue::Machine(value)
        });
    }
    if let Some(only) = &catalogue.builtin_only {
        out.insert(
            Key::Catalogue,
            EntryValue::Catalogue(CatalogueSpec {
                builtin: only.clone(),
            }),
        );
    }
    for schema in catalogue.own() {
        if let Ok(name) = SectionName::new(&schema.name) {
            out.insert(Key::Schema(name), EntryValue::Schema(schema.source.clone()));
        }
    }
    for decl in repo.modes() {
        for s in &decl.sections {
            let Ok(name) = SectionName::new(s.name()) else {
                continue;
            };
            // The first of duplicates wins, as for every lookup (validation reports them).
            out.entry(Key::section(decl.mode.clone(), name))
                .or_insert_with(|| EntryValue::Section(s.node.clone()));
        }
    }
    out
}

/// A machine's membership entry.
pub fn membership(group: GroupName, address: &str, serial: Option<String>) -> EntryValue {
    EntryValue::Machine(Membership::declared(group, address, serial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostics, SourceFile, parse_files};
    use crate::model::MachineName;

    pub const REPO: &str = r#"
cluster "americas" {
    dns { server "10.0.0.53"; }
}
group "Main_Group"
group "Paris" { dns { server "192.0.2.53"; } }
machine "lab1" address="10.1.0.1"
machine "lab3" group="Paris" address="10.1.0.3" {
    interfaces { interface "Data1" address="10.1.0.3/24"; }
}
"#;

    #[test]
    fn a_repo_declares_sections_and_membership() {
        let mut diags = Diagnostics::default();
        let repo = parse_files(vec![SourceFile::new("r.kdl", REPO)], &mut diags);
        let d = desired(&repo, &Catalogue::builtin());
        let keys: Vec<String> = d.keys().map(Key::to_string).collect();
        assert_eq!(
            keys,
            [
                "@cluster",
                "@group:Main_Group",
                "@group:Paris",
                "@machine:lab1",
                "@machine:lab3",
                "cluster/dns",
                "group:Paris/dns",
                "machine:lab3/interfaces"
            ]
        );
        let lab3 = Key::Machine(MachineName::new("lab3").unwrap());
        assert_eq!(
            d[&lab3].to_text(&lab3),
            "machine lab3 address=\"10.1.0.3\" declared=\"true\" group=Paris\n"
        );
    }

    #[test]
    fn a_repo_s_own_schemas_and_builtin_selection_are_entries() {
        let mut diags = Diagnostics::default();
        let cat = Catalogue::load(
            &[SourceFile::new(
                "schemas/tz.kdl",
                "section \"timezone\" { arg \"zone\" type=\"string\"; default \"Europe/Paris\"; }\nbuiltin-sections \"dns\" \"interfaces\"",
            )],
            &mut diags,
        );
        assert!(diags.problems().is_empty(), "{:?}", diags.problems());
        let repo = parse_files(vec![SourceFile::new("r.kdl", REPO)], &mut diags);
        let d = desired(&repo, &cat);
        assert_eq!(
            d[&Key::Catalogue].to_text(&Key::Catalogue),
            "builtin-sections dns interfaces\n"
        );
        let tz = Key::Schema(SectionName::new("timezone").unwrap());
        assert!(
            d[&tz].to_text(&tz).contains("Europe/Paris"),
            "{}",
            d[&tz].to_text(&tz)
        );
    }
}
