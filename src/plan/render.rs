//! Rendering a plan: human text with unified diffs of the canonical KDL, or JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use similar::TextDiff;

use super::{Change, Plan, SectionChange};
use crate::model::Mode;

/// How many machine names a human summary line lists before "and N more".
const NAMES_SHOWN: usize = 5;

/// The plan for people: a summary, then per mode and section a `+`/`~`/`-` line with the
/// created content or a unified diff, per machine the effective sections that change, and
/// shadowing notices. Ends with one line saying whether there is anything to do.
pub fn render_human(plan: &Plan) -> String {
    let mut out = String::new();
    let count = |f: fn(&Change) -> bool| plan.actions.iter().filter(|a| f(&a.change)).count();
    let created = count(|c| matches!(c, Change::Create { .. }));
    let changed = count(|c| matches!(c, Change::Change { .. }));
    let removed = count(|c| matches!(c, Change::Remove { .. }));
    let _ = writeln!(
        out,
        "desired: {} by {}: {}",
        plan.origin.source,
        plan.origin.author,
        plan.origin.message.lines().next().unwrap_or_default()
    );
    if plan.is_empty() {
        out.push_str("no changes: the agent matches the desired state\n");
        return out;
    }
    for action in &plan.actions {
        match &action.change {
            Change::Create { new } => {
                let _ = writeln!(out, "\n+ {} (created)", action.key);
                for line in new.to_text(&action.key).lines() {
                    let _ = writeln!(out, "  + {line}");
                }
            }
            Change::Change { old, new } => {
                let _ = writeln!(out, "\n~ {} (changed)", action.key);
                let (old, new) = (old.to_text(&action.key), new.to_text(&action.key));
                let diff = TextDiff::from_lines(old.as_str(), new.as_str());
                for line in diff.unified_diff().context_radius(3).to_string().lines() {
                    let _ = writeln!(out, "  {line}");
                }
            }
            Change::Remove { old } => {
                let _ = writeln!(out, "\n- {} (removed)", action.key);
                for line in old.to_text(&action.key).lines() {
                    let _ = writeln!(out, "  - {line}");
                }
            }
        }
    }
    if !plan.machines.is_empty() {
        out.push_str("\nmachines whose effective config changes:\n");
        // Machines with the same changes share an entry: a cluster-wide change to a
        // thousand machines is listed once, not a thousand times.
        let mut same: BTreeMap<Vec<String>, Vec<&str>> = BTreeMap::new();
        for m in &plan.machines {
            let lines = if m.new {
                vec![format!(
                    "new machine, {} defined",
                    crate::text::count(m.sections.len(), "section")
                )]
            } else {
                // Aligned here, not by text::columns: these lines are also the key that
                // groups machines with the same changes, and section names are ASCII.
                let width = m
                    .sections
                    .iter()
                    .map(|s| s.section.len())
                    .max()
                    .unwrap_or(0);
                m.renamed_from
                    .iter()
                    .map(|was| format!("renamed from {was}"))
                    .chain(m.sections.iter().map(|s| section_change(s, width)))
                    .collect()
            };
            same.entry(lines).or_default().push(&m.machine);
        }
        write_grouped(&mut out, same);
    }
    if !plan.unreached.is_empty() {
        out.push_str(
            "\nchanges that do not reach these machines (a lower level sets the section):\n",
        );
        let mut same: BTreeMap<Vec<String>, Vec<&str>> = BTreeMap::new();
        let mut by_machine: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for u in &plan.unreached {
            by_machine.entry(&u.machine).or_default().push(format!(
                "{}  changed at {}, set by {}",
                u.section, u.changed_at, u.set_by
            ));
        }
        for (machine, lines) in by_machine {
            same.entry(lines).or_default().push(machine);
        }
        write_grouped(&mut out, same);
    }
    for s in &plan.shadows {
        let by: Vec<String> = s.by.iter().map(Mode::to_string).collect();
        let _ = writeln!(
            out,
            "\nnote: {} will not affect these modes, which define their own: {}",
            s.key,
            by.join(", ")
        );
    }
    for n in &plan.notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
    let _ = writeln!(
        out,
        "\nplan: {created} to create, {changed} to change, {removed} to remove"
    );
    out
}

/// Machines that share the same lines, as one entry: their names (the first few and
/// "and N more"), then the lines — or one line after the names when there is one.
fn write_grouped(out: &mut String, same: BTreeMap<Vec<String>, Vec<&str>>) {
    for (lines, machines) in same {
        let mut names = machines[..machines.len().min(NAMES_SHOWN)].join(", ");
        if machines.len() > NAMES_SHOWN {
            let _ = write!(names, " and {} more", machines.len() - NAMES_SHOWN);
        }
        match lines.as_slice() {
            [one] if one.starts_with("new machine") => {
                let _ = writeln!(out, "  {names}: {one}");
            }
            _ => {
                let _ = writeln!(out, "  {names}");
                for line in lines {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
}

fn section_change(s: &SectionChange, width: usize) -> String {
    let mode = |m: &Option<Mode>| {
        m.as_ref()
            .map_or("factory default".to_owned(), Mode::to_string)
    };
    let name = &s.section;
    if s.from.is_none() && s.was.is_none() {
        // No mode defines it on either side: the schema's default itself changed.
        format!("{name:width$}  new factory default")
    } else if s.from == s.was {
        format!("{name:width$}  from {}", mode(&s.from))
    } else {
        format!(
            "{name:width$}  from {} (was {})",
            mode(&s.from),
            mode(&s.was)
        )
    }
}
