//! The same fleet as an Ansible inventory, for comparing `strata validate` with
//! `ansible-inventory --list` on the same data (`benches/validate.rs`): the cluster level
//! becomes `group_vars/all.yml`, each group a group of `hosts.yml` with its
//! `group_vars/<group>.yml`, each machine a host of its group with its
//! `host_vars/<host>.yml`, so Ansible layers them as Strata does (all, group, host).
//!
//! A section becomes a variable of the same name. A node becomes a scalar when it has
//! only one argument, else a mapping of its properties, its arguments (`args`, or `name`
//! for one) and its children, grouped by name into lists. Not part of the library: the
//! bench includes this file with `#[path]`, after `fleet.rs`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use kdl::{KdlDocument, KdlNode, KdlValue};

/// Writes the fleet `files` (as `fleet::generate` gives them) as an inventory under
/// `dir`; returns the inventory file to give `ansible-inventory -i`.
pub fn write_inventory(
    dir: &Path,
    files: &[(String, String)],
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir.join("group_vars"))?;
    std::fs::create_dir_all(dir.join("host_vars"))?;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text) in files {
        let doc: KdlDocument = text.parse().expect("the fleet is KDL");
        for node in doc.nodes() {
            let name = first_arg(node);
            let (vars_file, vars) = match node.name().value() {
                "cluster" => (
                    "group_vars/all.yml".to_owned(),
                    format!("cluster_name: {}\n", quoted(&name)),
                ),
                "group" => {
                    groups.entry(name.clone()).or_default();
                    (format!("group_vars/{name}.yml"), String::new())
                }
                "machine" => {
                    let group = string_prop(node, "group");
                    groups.entry(group.clone()).or_default().push(name.clone());
                    let serial = string_prop(node, "serial");
                    (
                        format!("host_vars/{name}.yml"),
                        format!("strata_serial: {}\n", quoted(&serial)),
                    )
                }
                other => panic!("{path}: unexpected top-level node {other}"),
            };
            let mut out = format!("---\n{vars}");
            for section in node.children().map_or(&[][..], |c| c.nodes()) {
                write_key(&mut out, 0, section.name().value());
                write_node(&mut out, 1, section);
            }
            std::fs::write(dir.join(vars_file), out)?;
        }
    }
    let mut hosts = String::from("---\nall:\n  children:\n");
    for (group, members) in &groups {
        let _ = writeln!(hosts, "    {group}:");
        if !members.is_empty() {
            hosts.push_str("      hosts:\n");
            for m in members {
                let _ = writeln!(hosts, "        {m}:");
            }
        }
    }
    let inventory = dir.join("hosts.yml");
    std::fs::write(&inventory, hosts)?;
    Ok(inventory)
}

fn first_arg(node: &KdlNode) -> String {
    match node
        .entries()
        .iter()
        .find(|e| e.name().is_none())
        .map(|e| e.value())
    {
        Some(KdlValue::String(s)) => s.clone(),
        other => panic!("{}: expected a name, found {other:?}", node.name().value()),
    }
}

fn string_prop(node: &KdlNode, key: &str) -> String {
    match node.get(key) {
        Some(KdlValue::String(s)) => s.clone(),
        other => panic!("{}: expected {key}=, found {other:?}", node.name().value()),
    }
}

/// A YAML double-quoted scalar (JSON escapes are YAML escapes).
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn scalar(v: &KdlValue) -> String {
    match v {
        KdlValue::String(s) => quoted(s),
        KdlValue::Integer(i) => i.to_string(),
        KdlValue::Float(f) => f.to_string(),
        KdlValue::Bool(b) => b.to_string(),
        KdlValue::Null => "null".to_owned(),
    }
}

/// `key:` at `indent` (two spaces each), its value to follow.
fn write_key(out: &mut String, indent: usize, key: &str) {
    let _ = write!(out, "{:w$}{}:", "", quoted(key), w = indent * 2);
}

/// The value of `node` after its key, as a scalar on the same line or a block below it.
fn write_node(out: &mut String, indent: usize, node: &KdlNode) {
    let args: Vec<&KdlValue> = node
        .entries()
        .iter()
        .filter(|e| e.name().is_none())
        .map(|e| e.value())
        .collect();
    let props: Vec<(&str, &KdlValue)> = node
        .entries()
        .iter()
        .filter_map(|e| e.name().map(|n| (n.value(), e.value())))
        .collect();
    let children = node.children().map_or(&[][..], |c| c.nodes());
    if props.is_empty() && children.is_empty() {
        match args.as_slice() {
            [] => out.push_str(" null\n"),
            [one] => {
                let _ = writeln!(out, " {}", scalar(one));
            }
            many => {
                let items: Vec<String> = many.iter().map(|v| scalar(v)).collect();
                let _ = writeln!(out, " [{}]", items.join(", "));
            }
        }
        return;
    }
    out.push('\n');
    match args.as_slice() {
        [] => {}
        [one] => {
            write_key(out, indent, "name");
            let _ = writeln!(out, " {}", scalar(one));
        }
        many => {
            write_key(out, indent, "args");
            let items: Vec<String> = many.iter().map(|v| scalar(v)).collect();
            let _ = writeln!(out, " [{}]", items.join(", "));
        }
    }
    for (key, value) in props {
        write_key(out, indent, key);
        let _ = writeln!(out, " {}", scalar(value));
    }
    let mut by_name: BTreeMap<&str, Vec<&KdlNode>> = BTreeMap::new();
    for child in children {
        by_name.entry(child.name().value()).or_default().push(child);
    }
    for (name, nodes) in by_name {
        write_key(out, indent, name);
        out.push('\n');
        for child in nodes {
            let _ = write!(out, "{:w$}-", "", w = indent * 2 + 2);
            // A mapping item's first key goes after "- "; the others are indented to match.
            let mut item = String::new();
            write_node(&mut item, indent + 2, child);
            match item.strip_prefix('\n') {
                Some(block) => {
                    out.push(' ');
                    out.push_str(block.trim_start());
                }
                None => out.push_str(&item),
            }
        }
    }
}
