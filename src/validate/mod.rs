//! Validation of a whole config repo: the structural rules of design.md "The config
//! repo", schema conformance of every section, and references on every machine's
//! effective config; the seed's cluster requirements as warnings (appliance versions, the
//! machine count, and in [`naming`] interface names and hostnames). Every problem of a
//! run is collected; nothing stops at the first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::diagnostics::did_you_mean;
use crate::config::sources::{Names, ReadError, read_paths_named};
use crate::config::{Diagnostics, ModeDecl, Problem, Repo, parse_files};
use crate::model::{Level, MAIN_GROUP, Mode};
use crate::resolve::check_references;
use crate::schema::{Catalogue, check_section};

mod naming;

/// A config repo read and checked, with the catalogue it was checked against.
#[derive(Debug)]
pub struct Checked {
    /// What the files declare.
    pub repo: Repo,
    /// The built-in sections plus the repo's own schemas.
    pub catalogue: Catalogue,
    /// Every problem found, sorted by file and position.
    pub diags: Diagnostics,
}

/// Reads the repo at `paths` (directories or files) and validates it.
pub fn check_paths(paths: &[PathBuf]) -> Result<Checked, ReadError> {
    check_paths_named(paths, Names::InRepo)
}

/// [`check_paths`], naming the files as `names` says.
pub fn check_paths_named(paths: &[PathBuf], names: Names) -> Result<Checked, ReadError> {
    let sources = read_paths_named(paths, names)?;
    let mut diags = Diagnostics::default();
    let catalogue = Catalogue::load(&sources.schemas, &mut diags);
    let mut repo = parse_files(sources.kdl, &mut diags);
    // Files that could not be read or decoded are problems like any other.
    repo.unread.extend(sources.unread);
    diags.extend(sources.problems);
    for path in &sources.other {
        match crate::xml::file::read(path) {
            Ok(file) => crate::xml::cluster::load_into(&file, &catalogue, &mut repo, &mut diags),
            Err(e) => {
                let shown = path.display().to_string();
                repo.unread.push(shown.clone());
                diags.push(*crate::config::sources::unreadable(shown, e.cause));
            }
        }
    }
    validate(&repo, &catalogue, &mut diags);
    crate::secret::allow_plaintext_in_xml(&mut diags);
    // Reading the clock belongs with reading the files: the rest of validation is pure.
    expired_drift_ignore(&repo, crate::state::wall_ms(), &mut diags);
    diags.sort();
    Ok(Checked {
        repo,
        catalogue,
        diags,
    })
}

/// Runs every check on a parsed repo.
pub fn validate(repo: &Repo, catalogue: &Catalogue, diags: &mut Diagnostics) {
    // A file that could not be read declares nothing; "no cluster" or "no group" would
    // then only be echoes of its error.
    if repo.unread.is_empty() {
        cluster_rules(repo, diags);
        group_rules(repo, diags);
    }
    unique_names(&repo.groups, "group", diags);
    unique_names(&repo.machines, "machine", diags);
    address_rule(repo, diags);
    appliance_versions(repo, diags);
    naming::check(repo, diags);
    machine_count(repo, diags);
    for decl in repo.modes() {
        sections(decl, catalogue, diags);
    }
    drift_ignore_scope(repo, catalogue, diags);
    check_references(repo, catalogue, diags);
}

/// The cluster's drift-ignore rules (those that read) beside their nodes.
fn drift_ignore_rules(
    repo: &Repo,
) -> Vec<(
    crate::drift_ignore::Rule,
    &crate::model::Node,
    &std::sync::Arc<crate::config::SourceFile>,
)> {
    let Some(decl) = repo
        .cluster()
        .and_then(|c| c.section(crate::drift_ignore::SECTION))
    else {
        return Vec::new();
    };
    let Ok(rules) = crate::drift_ignore::rules(&decl.node) else {
        return Vec::new();
    };
    let nodes = decl.node.children.iter().filter(|n| n.name == "rule");
    rules
        .into_iter()
        .zip(nodes)
        .map(|(r, n)| (r, n, &decl.file))
        .collect()
}

/// A drift-ignore rule covers a mode the repo declares and a section the catalogue knows.
fn drift_ignore_scope(repo: &Repo, catalogue: &Catalogue, diags: &mut Diagnostics) {
    for (rule, node, file) in drift_ignore_rules(repo) {
        let declared = repo.modes().any(|m| m.mode == rule.mode);
        if !declared {
            diags.push(
                Problem::error(
                    "strata::section::drift-ignore",
                    format!(
                        "drift-ignore rule `{}` covers {}, which the repo does not declare",
                        rule.name, rule.mode
                    ),
                )
                .at(file, node.prop_span("mode"), "no such mode")
                .help("name `cluster`, or a group or machine the repo declares, as `group:Paris` or `machine:lab1`"),
            );
        }
        if catalogue.get(&rule.section).is_none() {
            let p = Problem::error(
                "strata::section::drift-ignore",
                format!(
                    "drift-ignore rule `{}` covers section `{}`, which the catalogue does not know",
                    rule.name, rule.section
                ),
            )
            .at(file, node.prop_span("section"), "unknown section");
            diags.push(match did_you_mean(&rule.section, catalogue.names()) {
                Some(s) => p.help(format!("did you mean `{s}`?")),
                None => p.help("`strata show --sections` lists the catalogue"),
            });
        }
    }
}

/// A drift-ignore rule already expired at `now_ms` ignores nothing: a warning, so that
/// it is removed or renewed.
pub fn expired_drift_ignore(repo: &Repo, now_ms: u64, diags: &mut Diagnostics) {
    for (rule, node, file) in drift_ignore_rules(repo) {
        if !rule.in_force(now_ms) {
            diags.push(
                Problem::warning(
                    "strata::section::drift-ignore-expired",
                    format!(
                        "drift-ignore rule `{}` expired at {}: check and status report what it covered",
                        rule.name, rule.until
                    ),
                )
                .at(file, node.prop_span("until"), "in the past")
                .help("remove the rule, or give it a later `until` if the difference is still tolerated"),
            );
        }
    }
}

fn cluster_rules(repo: &Repo, diags: &mut Diagnostics) {
    match repo.clusters.as_slice() {
        [] => diags.push(
            Problem::error(
                "strata::repo::no-cluster",
                "the config repo declares no cluster",
            )
            .help("add `cluster \"name\" { … }` to one file, such as cluster.kdl"),
        ),
        [(first, _), rest @ ..] => {
            for (decl, _) in rest {
                diags.push(
                    Problem::error("strata::repo::duplicate-cluster", "a second cluster node")
                        .at(&decl.file, decl.span, "second cluster")
                        .help(format!(
                            "a repo describes exactly one cluster; the first is at {}",
                            first.location()
                        )),
                );
            }
        }
    }
}

fn unique_names(decls: &[ModeDecl], kind: &str, diags: &mut Diagnostics) {
    let mut seen: HashMap<&str, &ModeDecl> = HashMap::new();
    for decl in decls {
        let name = decl.mode.name().unwrap_or_default();
        if let Some(first) = seen.insert(name, decl) {
            let mut p = Problem::error(
                "strata::repo::duplicate-name",
                format!("{kind} `{name}` is declared twice"),
            )
            .at(&decl.file, decl.name_span, "declared again here");
            if std::sync::Arc::ptr_eq(&first.file, &decl.file) {
                p = p.also(first.name_span, "first declared here");
            }
            diags.push(p.help(format!(
                "{kind} names are unique; merge the two (the first is at {})",
                first.location()
            )));
            seen.insert(name, first);
        }
    }
}

fn group_rules(repo: &Repo, diags: &mut Diagnostics) {
    if repo.groups.is_empty() {
        let mut p = Problem::error(
            "strata::repo::no-groups",
            "the config repo declares no group",
        )
        .help(format!(
            "every cluster has at least one group: add `group \"{MAIN_GROUP}\"`"
        ));
        if let Some(c) = repo.cluster() {
            p = p.at(&c.file, c.name_span, "this cluster has no group");
        }
        diags.push(p);
    }
    let names: Vec<&str> = repo.groups.iter().filter_map(|g| g.mode.name()).collect();
    for machine in &repo.machines {
        let group = machine.group_name();
        // An empty name is a `group=` of the wrong type, reported where it was read.
        if group.is_empty() || names.contains(&group) || repo.groups.is_empty() {
            continue;
        }
        let machine_name = machine.mode.name().unwrap_or_default();
        let p = match &machine.group {
            Some(g) => {
                let p = Problem::error(
                    "strata::repo::unknown-group",
                    format!(
                        "machine `{machine_name}` names group `{group}`, which is not declared"
                    ),
                )
                .at(&machine.file, g.span, "no such group");
                match did_you_mean(group, names.iter().copied()) {
                    Some(s) => p.help(format!("did you mean `{s}`?")),
                    None => p.help(format!(
                        "declare it with `group \"{group}\"`, or name one of: {}",
                        names.join(", ")
                    )),
                }
            }
            None => Problem::error(
                "strata::repo::missing-main-group",
                format!(
                    "machine `{machine_name}` belongs to `{MAIN_GROUP}`, which is not declared"
                ),
            )
            .at(&machine.file, machine.name_span, "no group= given")
            .help(format!(
                "declare `group \"{MAIN_GROUP}\"`, or give the machine a group=\"…\" property"
            )),
        };
        diags.push(p);
    }
    if let Some(cluster) = repo.cluster_name() {
        for g in &repo.groups {
            if g.mode.name() == Some(cluster) {
                diags.push(
                    Problem::warning(
                        "strata::repo::group-named-like-cluster",
                        format!("group `{cluster}` has the cluster's name"),
                    )
                    .at(&g.file, g.name_span, "same name as the cluster")
                    .help("this confuses which level a change is made at; name groups after sites and keep the cluster name general"),
                );
            }
        }
    }
}

fn address_rule(repo: &Repo, diags: &mut Diagnostics) {
    let (ips, names): (Vec<&ModeDecl>, Vec<&ModeDecl>) = repo
        .machines
        .iter()
        .partition(|m| m.address().parse::<IpAddr>().is_ok());
    if ips.is_empty() || names.is_empty() {
        return;
    }
    // Point at the machines of the less common kind.
    let (odd, kind, other) = if ips.len() <= names.len() {
        (ips, "an IP address", "hostnames")
    } else {
        (names, "a hostname", "IP addresses")
    };
    for m in odd {
        let span = m.address.as_ref().map_or(m.name_span, |a| a.span);
        diags.push(
            Problem::error(
                "strata::repo::mixed-addresses",
                format!(
                    "machine `{}` is reached by {kind} while the others use {other}",
                    m.mode.name().unwrap_or_default()
                ),
            )
            .at(&m.file, span, kind)
            .help(format!(
                "machines in a cluster are addressed all by hostname or all by IP address, never mixed; use {other} here too"
            )),
        );
    }
}

/// The appliance version a repo records for `machine`: its `appliance-version=`
/// property, else the `Version` line of the appliance header an XML import kept
/// (`xml-extra { header "Version" "15.0.1-416" }`), with where it is written.
fn appliance_version(machine: &ModeDecl) -> Option<(&str, miette::SourceSpan)> {
    if let Some(v) = &machine.appliance_version {
        return Some((&v.value, v.span));
    }
    machine
        .section(crate::schema::XML_EXTRA)?
        .node
        .children
        .iter()
        .filter(|h| h.name == "header")
        .find(|h| h.args.first().and_then(|a| a.as_str()) == Some("Version"))
        .and_then(|h| Some((h.args.get(1)?.as_str()?, h.span)))
}

/// The seed's same-version rule: machines whose recorded appliance versions differ are
/// warned about, once, at the first machine of the least common version.
fn appliance_versions(repo: &Repo, diags: &mut Diagnostics) {
    let known: Vec<(&ModeDecl, &str, miette::SourceSpan)> = repo
        .machines
        .iter()
        .filter_map(|m| appliance_version(m).map(|(v, span)| (m, v, span)))
        .collect();
    let Some(by) = crate::model::appliance::mixed_versions(
        known
            .iter()
            .map(|(m, v, _)| (m.mode.name().unwrap_or_default(), *v)),
    ) else {
        return;
    };
    let rarest = by
        .iter()
        .min_by_key(|(_, machines)| machines.len())
        .map(|(v, _)| v.as_str());
    let Some((m, v, span)) = known.iter().find(|(_, v, _)| Some(v.trim()) == rarest) else {
        return;
    };
    diags.push(
        Problem::warning(
            "strata::repo::mixed-appliance-versions",
            format!(
                "the machines run different appliance versions: {}",
                crate::model::appliance::describe_versions(&by)
            ),
        )
        .at(&m.file, *span, format!("{v} here"))
        .help(crate::model::appliance::MIXED_VERSIONS_HELP),
    );
}

/// The seed's 20-appliance note: a repo that declares more machines than the cluster's
/// threshold (`cluster-mesh max-machines-warning=N`, default 20) is warned about.
fn machine_count(repo: &Repo, diags: &mut Diagnostics) {
    let mesh = repo
        .cluster()
        .and_then(|c| c.section("cluster-mesh"))
        .map(|s| &s.node);
    let max = crate::model::appliance::max_machines(mesh);
    let Some(why) = crate::model::appliance::too_many(repo.machines.len(), max) else {
        return;
    };
    let mut p = Problem::warning("strata::repo::many-machines", why).help(format!(
        "split the machines into clusters of at most {max}, or, having watched the mesh, raise the threshold: `cluster-mesh max-machines-warning=N` in the cluster node"
    ));
    if let Some(c) = repo.cluster() {
        p = p.at(
            &c.file,
            c.name_span,
            format!("{} machines", repo.machines.len()),
        );
    }
    diags.push(p);
}

/// The section rules for one mode: every section known to the catalogue (with "did you
/// mean"), defined once, at a level its schema allows, with contents that match the
/// schema. The agent runs the same checks on every write it is sent.
pub fn sections(decl: &ModeDecl, catalogue: &Catalogue, diags: &mut Diagnostics) {
    let mut seen: HashMap<&str, &crate::config::SectionDecl> = HashMap::new();
    for section in &decl.sections {
        let name = section.name();
        let node = &section.node;
        if catalogue.get(name).is_some()
            && let Some(first) = seen.insert(name, section)
        {
            diags.push(
                Problem::error(
                    "strata::section::duplicate",
                    format!("section `{name}` is defined twice at {}", decl.mode),
                )
                .at(&section.file, node.name_span, "defined again")
                .also(first.node.name_span, "first definition")
                .help("a mode defines a section once; merge the two"),
            );
            continue;
        }
        section_rules(&decl.mode, node, &section.file, catalogue, diags);
    }
}

/// The rules for one section node defined at `mode`, read from `file`: a section the
/// catalogue knows (with "did you mean"), at a level its schema allows, with contents
/// that match the schema. The agent runs them on every section it is sent.
pub fn section_rules(
    mode: &Mode,
    node: &crate::model::Node,
    file: &std::sync::Arc<crate::config::SourceFile>,
    catalogue: &Catalogue,
    diags: &mut Diagnostics,
) {
    let name = node.name.as_str();
    let level = mode.level();
    let Some(schema) = catalogue.get(name) else {
        let p = Problem::error(
            "strata::section::unknown",
            format!("unknown section `{name}`"),
        )
        .at(file, node.name_span, "not in the section catalogue");
        let p = match did_you_mean(name, catalogue.names()) {
                Some(s) => p.help(format!("did you mean `{s}`?")),
                None => p.help(
                    "`strata show --sections` lists the catalogue; a repo can add sections in its own schemas/ directory",
                ),
            };
        diags.push(p);
        return;
    };
    if !schema.allows(level) {
        let fix = match schema.levels.as_slice() {
            [Level::Cluster] => "move it into the `cluster` node".to_owned(),
            [Level::Machine] => "move it into each `machine` node that needs it".to_owned(),
            levels => format!(
                "define it at {} level",
                levels
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        };
        let what = match mode {
            Mode::Cluster => "the cluster".to_owned(),
            other => other.to_string(),
        };
        diags.push(
            Problem::error(
                "strata::section::level",
                format!(
                    "`{name}` is {} (AsyncOS `{}`) and cannot be defined at {what}",
                    schema.levels_text(),
                    schema.command
                ),
            )
            .at(
                file,
                node.name_span,
                format!("not allowed at {level} level"),
            )
            .help(fix),
        );
        return;
    }
    check_section(schema, node, file, diags);
    if name == crate::freeze::SECTION
        && let Err(why) = crate::freeze::windows(node)
    {
        diags.push(
            Problem::error("strata::section::freeze", why)
                .at(file, node.name_span, "this change freeze does not read")
                .help("absolute windows give RFC 3339 times (from=\"2026-12-20T00:00:00Z\"); weekly ones give days=\"sat sun\" and UTC times of day (from=\"22:00\")"),
        );
    }
    if name == crate::drift_ignore::SECTION
        && let Err(why) = crate::drift_ignore::rules(node)
    {
        diags.push(
            Problem::error("strata::section::drift-ignore", why)
                .at(file, node.name_span, "this drift-ignore rule does not read")
                .help("write rule \"NAME\" mode=\"group:Paris\" section=\"dns\" path=\"server\" until=\"2027-01-31T00:00:00Z\" reason=\"…\""),
        );
    }
}
