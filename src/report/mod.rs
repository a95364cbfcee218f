//! Pure rendering of what `show` and `where` print: text for people and JSON for tools.
//! Nothing here reads files or the terminal; the CLI prints what these return.

mod documents;

pub use documents::{
    DefinedAtJson, EffectiveSectionJson, FactoryDefault, ModeSectionJson, OriginJson,
    ShowMachineJson, ShowModeJson, WhereJson,
};

use crate::config::{ModeDecl, Repo};
use crate::model::Mode;
use crate::resolve::{Effective, Origin, on_factory_default, where_defined};
use crate::schema::Catalogue;

fn mode_title(repo: &Repo, mode: &Mode) -> String {
    match mode {
        Mode::Cluster => format!("cluster {}", repo.cluster_name().unwrap_or("")),
        Mode::Group(g) => format!("group {g}"),
        Mode::Machine(m) => format!("machine {m}"),
    }
}

/// A machine's effective config as KDL, each section preceded by a comment saying where
/// it comes from. `only` limits it to one section. Sections on an empty factory default
/// are listed at the end rather than printed.
pub fn show_machine(eff: &Effective, repo: &Repo, only: Option<&str>) -> String {
    let name = eff.machine.mode.name().unwrap_or_default();
    let mut out = format!(
        "// machine {name} — group {}, cluster {}, address {}\n",
        eff.group,
        repo.cluster_name().unwrap_or("?"),
        eff.machine.address()
    );
    let mut empty_defaults = Vec::new();
    for (section, s) in &eff.sections {
        if only.is_some_and(|o| o != *section) {
            continue;
        }
        let origin = match s.origin {
            Origin::Mode(decl, sdecl) => {
                let empty = if s.node.is_empty() {
                    " — defined empty: overrides with nothing"
                } else {
                    ""
                };
                format!("from {} ({}){empty}", decl.mode, sdecl.location())
            }
            Origin::Factory if s.node.is_empty() && only.is_none() => {
                empty_defaults.push(*section);
                continue;
            }
            Origin::Factory => "factory default".to_owned(),
        };
        out.push_str(&format!("\n// {origin}\n{}", s.node.to_canonical()));
    }
    if !empty_defaults.is_empty() {
        out.push_str(&format!(
            "\n// empty factory defaults (no mode defines them): {}\n",
            empty_defaults.join(", ")
        ));
    }
    out
}

/// A machine's effective config as JSON.
pub fn show_machine_json(eff: &Effective, only: Option<&str>) -> ShowMachineJson {
    let sections = eff
        .sections
        .iter()
        .filter(|(name, _)| only.is_none_or(|o| o == **name))
        .map(|(name, s)| {
            let origin = match s.origin {
                Origin::Mode(decl, sdecl) => OriginJson::Mode {
                    mode: decl.mode.clone(),
                    file: sdecl.file.name.clone(),
                    line: sdecl.file.line_col(sdecl.node.span.offset()).0,
                },
                Origin::Factory => OriginJson::Factory(FactoryDefault::FactoryDefault),
            };
            let section = EffectiveSectionJson {
                origin,
                empty: s.node.is_empty(),
                kdl: s.node.to_canonical(),
            };
            (name.to_string(), section)
        })
        .collect();
    ShowMachineJson {
        machine: eff.machine.mode.name().map(str::to_owned),
        group: eff.group.to_owned(),
        address: eff.machine.address().to_owned(),
        sections,
    }
}

/// What one mode defines, as KDL with a location comment per section.
pub fn show_mode(repo: &Repo, decl: &ModeDecl, only: Option<&str>) -> String {
    let mut out = format!(
        "// {} — {}\n",
        mode_title(repo, &decl.mode),
        decl.location()
    );
    let mut any = false;
    for s in &decl.sections {
        if only.is_some_and(|o| o != s.name()) {
            continue;
        }
        any = true;
        let empty = if s.node.is_empty() {
            " — defined empty: overrides with nothing"
        } else {
            ""
        };
        out.push_str(&format!(
            "\n// {}{empty}\n{}",
            s.location(),
            s.node.to_canonical()
        ));
    }
    if !any {
        out.push_str(&format!(
            "\n// {} defines no {}\n",
            decl.mode,
            only.unwrap_or("sections")
        ));
    }
    out
}

/// What one mode defines, as JSON.
pub fn show_mode_json(decl: &ModeDecl, only: Option<&str>) -> ShowModeJson {
    let sections = decl
        .sections
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.name()))
        .map(|s| {
            let section = ModeSectionJson {
                file: s.file.name.clone(),
                line: s.file.line_col(s.node.span.offset()).0,
                empty: s.node.is_empty(),
                kdl: s.node.to_canonical(),
            };
            (s.name().to_owned(), section)
        })
        .collect();
    ShowModeJson {
        mode: decl.mode.clone(),
        sections,
    }
}

/// Where a section is defined, AsyncOS `clustershow` style: every mode, whether it
/// defines the section, and the machines each definition reaches.
pub fn where_text(repo: &Repo, catalogue: &Catalogue, section: &str) -> String {
    let schema = catalogue.get(section);
    let mut out = match schema {
        Some(s) => format!("{section} (AsyncOS {}) — {}\n", s.command, s.levels_text()),
        None => format!("{section}\n"),
    };
    out.push_str("Configured at mode:\n");
    let defined = where_defined(repo, catalogue, section);
    let mut lines = Vec::new();
    for decl in repo.modes() {
        let title = mode_title(repo, &decl.mode);
        let title = title[..1].to_uppercase() + &title[1..];
        match defined.iter().find(|(d, _)| std::ptr::eq(*d, decl)) {
            Some((_, reached)) => {
                let s = decl
                    .section(section)
                    .map(|s| s.location())
                    .unwrap_or_default();
                let reach = if reached.is_empty() {
                    "reaches no machine (overridden below)".to_owned()
                } else {
                    format!("reaches {}", machine_list(reached))
                };
                lines.push(format!("  {title}\tyes  {s}  {reach}"));
            }
            None => lines.push(format!("  {title}\tno")),
        }
    }
    out.push_str(&crate::text::columns(lines));
    let reached: usize = defined.iter().map(|(_, m)| m.len()).sum();
    let factory = on_factory_default(repo, &defined);
    if reached < repo.machines.len() {
        out.push_str(&format!(
            "On the factory default: {}\n",
            machine_list(&factory)
        ));
    }
    out
}

/// Where a section is defined, as JSON.
pub fn where_json(repo: &Repo, catalogue: &Catalogue, section: &str) -> WhereJson {
    let defined_at = where_defined(repo, catalogue, section)
        .iter()
        .map(|(d, reached)| {
            let s = d.section(section);
            DefinedAtJson {
                mode: d.mode.clone(),
                file: s.map(|s| s.file.name.clone()),
                line: s.map(|s| s.file.line_col(s.node.span.offset()).0),
                machines: reached
                    .iter()
                    .filter_map(|m| m.mode.name().map(str::to_owned))
                    .collect(),
            }
        })
        .collect();
    WhereJson {
        section: section.to_owned(),
        defined_at,
    }
}

fn machine_list(machines: &[&ModeDecl]) -> String {
    if machines.is_empty() {
        return "none".into();
    }
    machines
        .iter()
        .filter_map(|m| m.mode.name())
        .collect::<Vec<_>>()
        .join(", ")
}
