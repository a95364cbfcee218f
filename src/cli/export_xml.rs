//! `strata export-xml`: a machine's flattened effective config as an AsyncOS
//! configuration file, or the whole repo in Strata's cluster XML form.

use std::io::Write;

use super::output::Output;
use super::xml_args::ExportXmlArgs;
use super::{CliError, Failure, Outcome, load_valid};
use crate::config::diagnostics::did_you_mean;
use crate::xml::cluster::{export_cluster, export_machine};

/// Runs `strata export-xml`.
pub fn run(args: ExportXmlArgs, out: &Output) -> Result<Outcome, CliError> {
    let checked = load_valid(&args.repo.repo, out)?;
    let (repo, catalogue) = (&checked.repo, &checked.catalogue);
    let bytes = match &args.machine {
        Some(name) => {
            let Some(machine) = repo.machine(name) else {
                let names = repo.machines.iter().filter_map(|m| m.mode.name());
                let help = match did_you_mean(name, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "`strata show --cluster` and the machines/ files name the machines".into()
                    }
                };
                return Err(Failure::new(
                    format!("no machine `{name}` in the repo"),
                    help,
                ));
            };
            export_machine(repo, catalogue, machine)
        }
        None => export_cluster(repo, catalogue),
    };
    match &args.out {
        Some(path) => std::fs::write(path, &bytes).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check that the directory exists and is writable",
            )
        })?,
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe is not an error.
            let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
        }
    }
    Ok(Outcome::Ok)
}
