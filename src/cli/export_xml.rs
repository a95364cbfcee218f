//! `strata export-xml`: a machine's flattened effective config as an AsyncOS
//! configuration file, or the whole repo in Strata's cluster XML form. With `--format
//! json`, a JSON document about it (see [`json_report`]) instead of the XML on stdout.

use std::io::Write;

use serde_json::json;

use super::args::Format;
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
    if let Some(path) = &args.out {
        std::fs::write(path, &bytes).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {e}", path.display()),
                "check that the directory exists and is writable",
            )
        })?;
    }
    match (out.format, &args.out) {
        (Format::Json, _) => out.json(&json_report(&args, &bytes)?),
        (_, Some(_)) => {}
        (_, None) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe is not an error.
            let _ = stdout.write_all(&bytes).and_then(|()| stdout.flush());
        }
    }
    Ok(Outcome::Ok)
}

/// `--format json`: one JSON document saying what was exported. With `--out` it names
/// the file written; without, it carries the document as text in `xml`, which must be
/// written in the `encoding` its declaration names (ISO-8859-1 unless a character needs
/// UTF-8) to be the file `--out` would write.
fn json_report(args: &ExportXmlArgs, bytes: &[u8]) -> Result<serde_json::Value, CliError> {
    let mut report = json!({
        "exported": if args.machine.is_some() { "machine" } else { "cluster" },
        "machine": args.machine,
        "bytes": bytes.len(),
        "out": args.out.as_ref().map(|p| p.display().to_string()),
    });
    if args.out.is_none() {
        let text = crate::xml::decode_bytes(bytes)
            .map_err(|e| Failure::bug(format!("export-xml wrote XML it cannot read: {e}")))?;
        let encoding = text
            .lines()
            .next()
            .and_then(|l| l.split("encoding=\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("UTF-8")
            .to_owned();
        report["encoding"] = encoding.into();
        report["xml"] = text.into();
    }
    Ok(report)
}
