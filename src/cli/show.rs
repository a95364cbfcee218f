//! `strata show`: a machine's effective config with provenance, or what a mode defines.

use super::args::{Format, ShowArgs};
use super::json::{SectionInfoJson, SectionsJson};
use super::output::Output;
use super::{CliError, Failure, Outcome, load_valid};
use crate::config::diagnostics::did_you_mean;
use crate::model::Mode;
use crate::report;
use crate::resolve::effective;

/// Runs `strata show`.
pub fn run(args: ShowArgs, out: &Output) -> Result<Outcome, CliError> {
    let checked = load_valid(&args.repo.repo, out)?;
    let (repo, catalogue) = (&checked.repo, &checked.catalogue);
    let only = args.section.as_deref();
    if let Some(section) = only.filter(|s| catalogue.get(s).is_none()) {
        return Err(Failure::new(
            format!("unknown section `{section}`"),
            catalogue.unknown_section_help(section),
        ));
    }
    if args.sections {
        if out.format == Format::Json {
            let sections = catalogue
                .sections
                .values()
                .map(|s| SectionInfoJson {
                    name: s.name.clone(),
                    command: s.command.clone(),
                    levels: s.levels.iter().map(|l| l.as_str().to_owned()).collect(),
                    summary: s.summary.clone(),
                })
                .collect();
            out.json(&SectionsJson { sections });
            return Ok(Outcome::Ok);
        }
        let mut text = String::new();
        for s in catalogue.sections.values() {
            text.push_str(&format!(
                "{:22} {:18} {:24} {}\n",
                s.name,
                s.command,
                s.levels_text(),
                s.summary
            ));
        }
        out.print(&text);
        return Ok(Outcome::Ok);
    }
    let bad_name = |e: crate::model::NameError| {
        Failure::new(e.to_string(), "give the name as the repo declares it")
    };
    let mode = match (&args.machine, &args.group, args.cluster) {
        (Some(m), _, _) => {
            Mode::Machine(crate::model::MachineName::new(m.as_str()).map_err(bad_name)?)
        }
        (_, Some(g), _) => Mode::Group(crate::model::GroupName::new(g.as_str()).map_err(bad_name)?),
        (_, _, true) => Mode::Cluster,
        _ => {
            return Err(Failure::new(
                "say what to show",
                "use --machine NAME, --group NAME, --cluster or --sections",
            ));
        }
    };
    let Some(decl) = repo.mode(&mode) else {
        let names: Vec<&str> = match &mode {
            Mode::Group(_) => repo.groups.iter().filter_map(|g| g.mode.name()).collect(),
            _ => repo.machines.iter().filter_map(|m| m.mode.name()).collect(),
        };
        let wanted = mode.name().unwrap_or_default();
        let help = match did_you_mean(wanted, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("declared: {}", names.join(", ")),
        };
        return Err(Failure::new(
            format!("no {} `{wanted}` in the repo", mode.level()),
            help,
        ));
    };
    match (&mode, out.format) {
        (Mode::Machine(_), Format::Json) => out.json(&report::show_machine_json(
            &effective(repo, catalogue, decl),
            only,
        )),
        (Mode::Machine(_), _) => out.print(&report::show_machine(
            &effective(repo, catalogue, decl),
            repo,
            only,
        )),
        (_, Format::Json) => out.json(&report::show_mode_json(decl, only)),
        _ => out.print(&report::show_mode(repo, decl, only)),
    }
    Ok(Outcome::Ok)
}
