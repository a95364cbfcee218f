//! `strata export-xml`: a machine's flattened effective config as an AsyncOS
//! configuration file, or the whole repo in Strata's cluster XML form. With `--format
//! json`, a JSON document about it (see [`json_report`]) instead of the XML on stdout.
//!
//! An appliance's file (`--machine`) holds its secrets in the clear, as the appliance
//! expects them: decrypted with an age identity file (`--age-identity`), written only
//! to a file, 0600. The cluster XML form keeps them encrypted, as the repo does.

use std::io::Write;

use super::args::Format;
use super::json::ExportXmlJson;
use super::output::Output;
use super::xml_args::ExportXmlArgs;
use super::{CliError, Failure, Outcome, load_valid};
use crate::config::diagnostics::did_you_mean;
use crate::xml::export::{export_cluster, export_machine};

/// Runs `strata export-xml`.
pub fn run(args: ExportXmlArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut checked = load_valid(&args.repo.repo, out)?;
    let secrets = args.machine.is_some() && decrypt_secrets(&args, &mut checked)?;
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
        let mode = if secrets {
            crate::atomic_file::FileMode::Private
        } else {
            crate::atomic_file::FileMode::Shared
        };
        crate::atomic_file::write(path, &bytes, mode).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {}", path.display(), e.source),
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
fn json_report(args: &ExportXmlArgs, bytes: &[u8]) -> Result<ExportXmlJson, CliError> {
    let mut report = ExportXmlJson {
        exported: if args.machine.is_some() {
            "machine"
        } else {
            "cluster"
        }
        .to_owned(),
        machine: args.machine.clone(),
        bytes: bytes.len(),
        out: args.out.as_ref().map(|p| p.display().to_string()),
        encoding: None,
        xml: None,
    };
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
        report.encoding = Some(encoding);
        report.xml = Some(text);
    }
    Ok(report)
}

/// Decrypts the repo's secrets in place for an appliance's file; true when it holds any.
/// Refused without `--age-identity` (and `--out`), or when the identity decrypts none.
fn decrypt_secrets(
    args: &ExportXmlArgs,
    checked: &mut crate::validate::Checked,
) -> Result<bool, CliError> {
    let sites = crate::secret::sites::find(&checked.repo, &checked.catalogue);
    let encrypted = sites.iter().filter(|s| s.encrypted()).count();
    if encrypted == 0 {
        return Ok(false);
    }
    let Some(file) = &args.age_identity else {
        return Err(Failure::new(
            format!(
                "the machine's configuration holds {}, which an appliance's file holds in the clear",
                crate::text::count(encrypted, "encrypted secret")
            ),
            "give --age-identity FILE (a key they are also encrypted to, such as the \
             break-glass key) and --out FILE; nothing was written",
        ));
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::new(
            format!("cannot read {}: {e}", file.display()),
            "give an age identity file",
        )
    })?;
    let keys: Vec<age::x25519::Identity> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .filter_map(|l| l.parse().ok())
        .collect();
    if keys.is_empty() {
        return Err(Failure::new(
            format!("{} holds no age identity", file.display()),
            "give a file with an `AGE-SECRET-KEY-1…` line",
        ));
    }
    let mut failed = Vec::new();
    for decl in checked.repo.modes_mut() {
        for section in &mut decl.sections {
            let path = format!("{}", decl.mode);
            failed.extend(crate::secret::identity::decrypt_node(
                &mut section.node,
                &keys,
                &path,
            ));
        }
    }
    if !failed.is_empty() {
        return Err(Failure::new(
            format!("{} cannot decrypt: {}", file.display(), failed.join("; ")),
            "give the identity they are encrypted to; nothing was written",
        ));
    }
    Ok(true)
}
