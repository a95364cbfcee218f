//! `strata validate`: check repos and files, report every problem, exit 0 or 1.
//!
//! Files are named as reached from the current directory (`examples/americas/cluster.kdl`)
//! in every format, and each JSON problem also names its `repo` (the path given), so a
//! run over several repos is unambiguous. A file that cannot be read or is not UTF-8 is
//! a problem at that file like any other, so the JSON keeps its shape and `github` its
//! annotations.

use std::path::PathBuf;

use super::args::{Format, ValidateArgs};
use super::json::{OmittedJson, ProblemJson, RepoSummary, ValidateJson};
use super::output::Output;
use super::{CliError, Outcome};
use crate::config::Diagnostics;
use crate::config::sources::Names;
use crate::text::count;
use crate::validate::check_paths_named;

/// Runs `strata validate`.
pub fn run(args: ValidateArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut paths = args.paths;
    paths.extend(args.repo);
    if paths.is_empty() {
        paths.push(PathBuf::from("."));
    }
    // Each directory is a repo of its own, and so is each XML file (one appliance, or a
    // cluster form); loose KDL files together form one repo.
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
    let (xml, files): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")));
    let mut units: Vec<Vec<PathBuf>> = dirs.into_iter().chain(xml).map(|d| vec![d]).collect();
    if !files.is_empty() {
        units.push(files);
    }
    let mut all = Diagnostics::default();
    let mut summaries = Vec::new();
    let mut problems = Vec::new();
    for unit in &units {
        // Files are named as reached from here, so that a report covering several repos
        // points at each file unambiguously, and GitHub annotations land on it.
        let mut checked = check_paths_named(unit, Names::FromHere).map_err(CliError::invalid)?;
        if args.allow_plaintext_secrets {
            crate::secret::allow_plaintext(&mut checked.diags);
        }
        let repo = &checked.repo;
        let sections: usize = repo.modes().map(|m| m.sections.len()).sum();
        let name = unit
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ");
        summaries.push(RepoSummary {
            path: name.clone(),
            valid: !checked.diags.has_errors(),
            cluster: repo.cluster_name().map(str::to_owned),
            groups: repo.groups.len(),
            machines: repo.machines.len(),
            sections_defined: sections,
            errors: checked.diags.error_count(),
            warnings: checked.diags.warning_count(),
        });
        // Every repo's problems go through the one collection, so the caps hold for the
        // run: the JSON lists the problems it kept.
        let (kept, omitted) = checked.diags.into_parts();
        for p in kept {
            let value = ProblemJson {
                repo: Some(name.clone()),
                ..ProblemJson::of(&p)
            };
            if all.keep(p) {
                problems.push(value);
            }
        }
        for o in &omitted {
            all.add_omitted(o);
        }
    }
    let valid = !all.has_errors();
    match out.format {
        Format::Json => out.json(&ValidateJson {
            valid,
            errors: all.error_count(),
            warnings: all.warning_count(),
            repos: summaries,
            problems,
            omitted: all.omitted().map(OmittedJson::of).collect(),
        }),
        Format::Github => out.diagnostics(&all),
        Format::Human => {
            out.diagnostics(&all);
            let mut text = String::new();
            for s in &summaries {
                let mark = if s.valid { "valid" } else { "INVALID" };
                text.push_str(&format!(
                    "{}: {mark} — cluster {}, {}, {}, {} defined; {}, {}\n",
                    s.path,
                    s.cluster.as_deref().unwrap_or("(none)"),
                    count(s.groups, "group"),
                    count(s.machines, "machine"),
                    count(s.sections_defined, "section"),
                    count(s.errors, "error"),
                    count(s.warnings, "warning"),
                ));
            }
            out.print(&text);
        }
    }
    Ok(if valid { Outcome::Ok } else { Outcome::Failed })
}
