//! KDL text → declarations: the top-level `cluster`, `group` and `machine` nodes.

use std::sync::Arc;

use kdl::{KdlDocument, KdlNode, KdlValue};

use super::diagnostics::did_you_mean;
use super::kdl_text::{KdlTextError, parse_kdl};
use super::{Diagnostics, ModeDecl, Problem, Repo, SectionDecl, SourceFile, Spanned};
pub use crate::model::is_mode_name;
use crate::model::{GroupName, MODE_NAME_RULE, MachineName, Mode, Node};

const TOP_LEVEL: [&str; 3] = ["cluster", "group", "machine"];
const MACHINE_PROPS: [&str; 5] = ["group", "address", "serial", "appliance-version", "was"];

/// Parses every file and collects what they declare. Syntax errors and malformed
/// top-level nodes are reported; a file that does not parse contributes nothing.
pub fn parse_files(files: Vec<Arc<SourceFile>>, diags: &mut Diagnostics) -> Repo {
    let mut repo = Repo::default();
    for (file, parsed) in files.iter().zip(parse_all(&files)) {
        match parsed {
            Ok(doc) => {
                for node in doc.nodes() {
                    top_level(file, node, &mut repo, diags);
                }
            }
            Err(err) => {
                repo.unread.push(file.name.clone());
                super::kdl_text::report(file, &err, diags);
            }
        }
    }
    repo.files = files;
    repo
}

/// Parses the KDL of every file, spread over the available cores: the KDL parser is the
/// most expensive step of validating a large repo. Results come back in file order.
fn parse_all(files: &[Arc<SourceFile>]) -> Vec<Result<KdlDocument, KdlTextError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || files.len() < 64 {
        return files.iter().map(|f| parse_kdl(&f.text)).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|f| parse_kdl(&f.text)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            // A panic in the parser is a bug in kdl; pass it on rather than hide it.
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn top_level(file: &Arc<SourceFile>, node: &KdlNode, repo: &mut Repo, diags: &mut Diagnostics) {
    let kind = node.name().value();
    if !TOP_LEVEL.contains(&kind) {
        let mut p = Problem::error(
            "strata::repo::unknown-node",
            format!("unknown top-level node `{kind}`"),
        )
        .at(file, node.span(), "not a cluster, group or machine");
        p = match did_you_mean(kind, TOP_LEVEL) {
            Some(s) => p.help(format!("did you mean `{s}`?")),
            None => p.help(
                "the top level holds only `cluster`, `group` and `machine` nodes; sections go inside them",
            ),
        };
        diags.push(p);
        return;
    }
    let Some(name) = mode_name(file, node, kind, diags) else {
        return;
    };
    // `mode_name` checked the name: these cannot fail.
    let mode = match kind {
        "cluster" => Mode::Cluster,
        "group" => match GroupName::new(name.value.as_str()) {
            Ok(n) => Mode::Group(n),
            Err(_) => return,
        },
        _ => match MachineName::new(name.value.as_str()) {
            Ok(n) => Mode::Machine(n),
            Err(_) => return,
        },
    };
    let mut decl = ModeDecl {
        mode,
        file: file.clone(),
        span: node.span(),
        name_span: name.span,
        group: None,
        address: None,
        serial: None,
        appliance_version: None,
        was: None,
        sections: Vec::new(),
    };
    for entry in node.entries().iter().skip(1) {
        let Some(prop) = entry.name() else {
            diags.push(
                Problem::error(
                    "strata::repo::extra-argument",
                    format!("`{kind}` takes one argument, its name"),
                )
                .at(file, entry.span(), "unexpected argument")
                .help(if kind == "machine" {
                    "remove it, or make it a property such as `group=\"Paris\"`"
                } else {
                    "remove it: settings go in sections inside the node's block"
                }),
            );
            continue;
        };
        let prop = prop.value();
        let value = match entry.value() {
            KdlValue::String(s) if kind == "machine" && MACHINE_PROPS.contains(&prop) => s.clone(),
            _ if kind == "machine" && MACHINE_PROPS.contains(&prop) => {
                diags.push(
                    Problem::error("strata::repo::type", format!("`{prop}` must be a string"))
                        .at(file, entry.span(), "not a string")
                        .help(format!("quote the value: {prop}=\"…\"")),
                );
                if prop == "group" {
                    // Reported here; an empty name keeps "not declared" from echoing it.
                    decl.group = Some(Spanned {
                        value: String::new(),
                        span: entry.span(),
                    });
                }
                continue;
            }
            _ => {
                let allowed: &[&str] = if kind == "machine" {
                    &MACHINE_PROPS
                } else {
                    &[]
                };
                let mut p = Problem::error(
                    "strata::repo::unknown-property",
                    format!("`{kind}` has no property `{prop}`"),
                )
                .at(file, entry.span(), "unknown property");
                p = match did_you_mean(prop, allowed.iter().copied()) {
                    Some(s) => p.help(format!("did you mean `{s}`?")),
                    None if allowed.is_empty() => {
                        p.help(format!("a `{kind}` node takes only its name"))
                    }
                    None => p.help(format!("`{kind}` takes {}", allowed.join(", "))),
                };
                diags.push(p);
                continue;
            }
        };
        let spanned = Spanned {
            value,
            span: entry.span(),
        };
        match prop {
            "group" => decl.group = Some(spanned),
            "address" => decl.address = Some(spanned),
            "appliance-version" => decl.appliance_version = Some(spanned),
            "was" => decl.was = Some(spanned),
            _ => decl.serial = Some(spanned.value),
        }
    }
    if let Some(children) = node.children() {
        decl.sections = children
            .nodes()
            .iter()
            .map(|n| SectionDecl {
                node: Node::from_kdl(n),
                file: file.clone(),
            })
            .collect();
    }
    match kind {
        "cluster" => repo.clusters.push((decl, name)),
        "group" => repo.groups.push(decl),
        _ => repo.machines.push(decl),
    }
}

/// The name argument of a mode node, checked against [`is_mode_name`].
fn mode_name(
    file: &Arc<SourceFile>,
    node: &KdlNode,
    kind: &str,
    diags: &mut Diagnostics,
) -> Option<Spanned> {
    let first = node.entries().first().filter(|e| e.name().is_none());
    let Some(entry) = first else {
        diags.push(
            Problem::error(
                "strata::repo::missing-name",
                format!("`{kind}` needs a name"),
            )
            .at(file, node.span(), "no name")
            .help(format!(
                "write it as the first argument: {kind} \"name\" {{ … }}"
            )),
        );
        return None;
    };
    let Some(name) = entry.value().as_string() else {
        diags.push(
            Problem::error(
                "strata::repo::bad-name",
                format!("a {kind} name must be a string"),
            )
            .at(file, entry.span(), "not a string")
            .help("quote the name"),
        );
        return None;
    };
    if !is_mode_name(name) {
        diags.push(
            Problem::error(
                "strata::repo::bad-name",
                format!("`{name}` is not a valid {kind} name"),
            )
            .at(file, entry.span(), "invalid name")
            .help(format!("names use {MODE_NAME_RULE}")),
        );
        return None;
    }
    Some(Spanned {
        value: name.to_owned(),
        span: entry.span(),
    })
}
