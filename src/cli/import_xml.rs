//! `strata import-xml`: AsyncOS configuration XML (or Strata's cluster XML form) → KDL
//! files in a config repo. Reads and checks everything first; writes only when the
//! resulting repo validates and no existing file would be overwritten (unless --force).

use std::path::Path;
use std::sync::Arc;

use super::args::Format;
use super::files::{NewFile, write_all};
use super::json::ImportXmlJson;
use super::output::Output;
use super::xml_args::ImportXmlArgs;
use super::{CliError, Failure, Outcome, load_valid};
use crate::config::sources::read_paths;
use crate::config::{Diagnostics, SourceFile, parse_files};
use crate::model::MAIN_GROUP;
use crate::schema::Catalogue;
use crate::validate::validate;
use crate::xml::cluster::{Loaded, file_stem, load, standalone_repo};
use crate::xml::import::{Planned, from_cluster, from_cluster_assigned, into_machine, new_cluster};

/// Runs `strata import-xml`.
pub fn run(args: ImportXmlArgs, out: &Output) -> Result<Outcome, CliError> {
    let dir = args.repo.repo.clone();
    let file = crate::xml::file::read(&args.file).map_err(CliError::invalid)?;
    // With --machine the repo must exist and be valid; its own schemas count.
    let existing = match &args.machine {
        Some(_) => Some(load_valid(&dir, out)?),
        None => None,
    };
    let catalogue = match &existing {
        Some(c) => c.catalogue.clone(),
        None => repo_catalogue(&dir)?,
    };
    let mut diags = Diagnostics::default();
    let loaded = load(&file, &catalogue, &mut diags);
    let (plan, what) = match loaded {
        None => {
            report(out, &diags);
            return Err(refused(&args.file, "it is not readable XML"));
        }
        Some(Loaded::Cluster(xml_repo)) => {
            if args.machine.is_some() {
                return Err(Failure::new(
                    format!(
                        "{} is a cluster XML file, not one appliance's",
                        args.file.display()
                    ),
                    "import it without --machine, into a new repo: strata import-xml FILE --repo DIR",
                ));
            }
            validate(&xml_repo, &catalogue, &mut diags);
            if args.assign.is_empty() {
                let plan = from_cluster(&xml_repo, args.new_cluster.as_deref());
                (plan, "the cluster".to_owned())
            } else {
                let problems = crate::xml::assign::check(&xml_repo, &args.assign);
                if !problems.is_empty() {
                    return Err(Failure::new(
                        format!(
                            "{} was not imported: {}",
                            args.file.display(),
                            problems.join("; ")
                        ),
                        "assign each appliance a machine of the file (NAME=MACHINE) or a group of it (NAME=group:GROUP); nothing was written",
                    ));
                }
                let plan =
                    from_cluster_assigned(&xml_repo, args.new_cluster.as_deref(), &args.assign);
                let what = format!(
                    "the cluster, onto {}",
                    crate::text::count(args.assign.len(), "appliance")
                );
                (plan, what)
            }
        }
        Some(Loaded::Appliance(_)) if !args.assign.is_empty() => {
            return Err(Failure::new(
                format!(
                    "{} is one appliance's configuration: --assign loads a cluster XML file",
                    args.file.display()
                ),
                "load one appliance with --machine NAME; a cluster file comes from `strata export-xml --cluster`",
            ));
        }
        Some(Loaded::Appliance(app)) => {
            let machine = args
                .machine
                .clone()
                .or(args.name.clone())
                .or(app.hostname().map(str::to_owned))
                .ok_or_else(|| {
                    Failure::new(
                        format!(
                            "{} has an empty or no <hostname> (as masked exports do), so nothing names the machine",
                            args.file.display()
                        ),
                        "name it: --name NAME with --new-cluster, or --machine NAME into an existing repo",
                    )
                })?;
            // The appliance on its own, as `validate FILE.xml` checks it: problems point
            // into the XML.
            let cluster_name = args
                .new_cluster
                .clone()
                .unwrap_or_else(|| file_stem(&file.name));
            let standalone = standalone_repo(&app, &catalogue, &cluster_name, &machine)
                .map_err(|e| Failure::new(e.to_string(), "name the machine with --machine NAME"))?;
            validate(&standalone, &catalogue, &mut diags);
            match (&existing, &args.new_cluster) {
                (Some(checked), _) => {
                    let group = args.group.clone().unwrap_or_else(|| MAIN_GROUP.to_owned());
                    let repo = &checked.repo;
                    if repo.group(&group).is_none() {
                        return Err(Failure::new(
                            format!("the repo has no group `{group}`"),
                            "declare it in groups.kdl first, or choose another with --group",
                        ));
                    }
                    if let Some(m) = repo.machine(&machine) {
                        let target = dir.join(crate::xml::import::machine_path(&machine));
                        let same_file =
                            Path::new(&m.file.name) == target.strip_prefix(&dir).unwrap_or(&target);
                        if !(args.force && same_file) {
                            return Err(Failure::new(
                                format!(
                                    "machine `{machine}` is already declared at {}",
                                    m.location()
                                ),
                                "choose another name, or give --force to replace its file",
                            ));
                        }
                    }
                    let plan = into_machine(
                        &app,
                        &catalogue,
                        repo,
                        &machine,
                        &group,
                        args.address.as_deref(),
                    );
                    (plan, format!("machine {machine} (group {group})"))
                }
                (None, Some(cluster)) => {
                    let plan =
                        new_cluster(&app, &catalogue, cluster, &machine, args.address.as_deref());
                    (
                        plan,
                        format!("the new cluster {cluster}, machine {machine}"),
                    )
                }
                (None, None) => {
                    return Err(Failure::new(
                        format!(
                            "{} is one appliance's configuration: say where it goes",
                            args.file.display()
                        ),
                        "give --machine NAME (into an existing repo) or --new-cluster NAME (a new repo)",
                    ));
                }
            }
        }
    };
    crate::secret::allow_plaintext_in_xml(&mut diags);
    diags.sort();
    if diags.has_errors() {
        report(out, &diags);
        return Err(refused(&args.file, "it has the errors above"));
    }
    let plan = encrypt_secrets(plan, &catalogue, &args.recipient, &args.file)?;
    refuse_overwrite(&dir, &plan, args.force)?;
    check_result(&dir, &plan, &catalogue, out)?;
    report(out, &diags);
    let files: Vec<NewFile> = plan
        .files
        .iter()
        .map(|(rel, text)| NewFile {
            rel,
            text,
            expect: None,
        })
        .collect();
    write_all(&dir, &files)?;
    match out.format {
        Format::Json => {
            out.json(&ImportXmlJson {
                imported: what.clone(),
                files: plan.files.iter().map(|(p, _)| p.clone()).collect(),
                summary: plan.summary.iter().cloned().collect(),
                warnings: diags.warning_count(),
            });
        }
        _ => {
            let files: Vec<&str> = plan.files.iter().map(|(p, _)| p.as_str()).collect();
            out.print(&format!(
                "imported {} as {what}: wrote {}\n{}",
                args.file.display(),
                files.join(", "),
                plan.summary_text()
            ));
        }
    }
    Ok(Outcome::Ok)
}

/// `plan` with every secret of its files encrypted to `recipients`: refused, naming
/// them, when there are secrets and no recipient.
fn encrypt_secrets(
    mut plan: Planned,
    catalogue: &Catalogue,
    recipients: &[String],
    file: &Path,
) -> Result<Planned, CliError> {
    let sources: Vec<Arc<SourceFile>> = plan
        .files
        .iter()
        .map(|(p, t)| SourceFile::new(p.clone(), t.clone()))
        .collect();
    let repo = parse_files(sources, &mut Diagnostics::default());
    let sites = crate::secret::sites::find(&repo, catalogue);
    let clear: Vec<&crate::secret::sites::Site> = sites.iter().filter(|s| !s.encrypted()).collect();
    if clear.is_empty() {
        return Ok(plan);
    }
    if recipients.is_empty() {
        let names: Vec<&str> = clear.iter().map(|s| s.path.as_str()).collect();
        return Err(Failure::new(
            format!(
                "{} was not imported: it holds {} ({}), which a repo keeps only encrypted",
                file.display(),
                crate::text::count(clear.len(), "secret"),
                names.join("; ")
            ),
            "give the cluster's recipient: --recipient age1… (`strata secret recipient` prints it); nothing was written",
        ));
    }
    let keys = crate::secret::parse_recipients(recipients).map_err(|e| {
        Failure::new(
            e.to_string(),
            "give age X25519 recipients (age1…), as `strata secret recipient` prints them",
        )
    })?;
    let mut edits = Vec::new();
    for site in clear {
        let text = crate::secret::encrypt(&site.value, &keys)
            .map_err(|e| Failure::new(e.to_string(), "check the recipients"))?;
        edits.push((site, text));
    }
    for (name, text) in crate::secret::sites::rewrite(&edits) {
        if let Some(f) = plan.files.iter_mut().find(|(p, _)| *p == name) {
            f.1 = text;
        }
    }
    Ok(plan)
}

fn refused(file: &Path, why: &str) -> CliError {
    Failure::new(
        format!("{} was not imported: {why}", file.display()),
        "nothing was written; fix the file and run the import again",
    )
}

fn report(out: &Output, diags: &Diagnostics) {
    let human = Output {
        format: Format::Human,
        color: out.color,
        width: out.width,
    };
    human.diagnostics(diags);
}

/// The built-in catalogue plus the schemas of `dir/schemas`, if any.
fn repo_catalogue(dir: &Path) -> Result<Catalogue, CliError> {
    let schemas = dir.join("schemas");
    let mut diags = Diagnostics::default();
    if !schemas.is_dir() {
        return Ok(Catalogue::builtin());
    }
    let sources = read_paths(&[dir.to_path_buf()]).map_err(CliError::invalid)?;
    let cat = Catalogue::load(&sources.schemas, &mut diags);
    Ok(cat)
}

fn refuse_overwrite(dir: &Path, plan: &Planned, force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    let existing: Vec<&str> = plan
        .files
        .iter()
        .filter(|(p, _)| std::fs::symlink_metadata(dir.join(p)).is_ok())
        .map(|(p, _)| p.as_str())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        format!(
            "{} already exists in {}",
            existing.join(", "),
            dir.display()
        ),
        "nothing was written; give --force to overwrite, or import into another --repo",
    ))
}

/// Validates the repo as it would be after the import: its KDL files with the new ones
/// in place.
fn check_result(
    dir: &Path,
    plan: &Planned,
    catalogue: &Catalogue,
    out: &Output,
) -> Result<(), CliError> {
    let mut files: Vec<Arc<SourceFile>> = Vec::new();
    let replaced = |name: &str| {
        plan.files
            .iter()
            .any(|(p, _)| Path::new(p) == Path::new(name))
    };
    let mut unreadable = Vec::new();
    if dir.is_dir() {
        let sources = read_paths(&[dir.to_path_buf()]).map_err(CliError::invalid)?;
        files.extend(sources.kdl.into_iter().filter(|f| !replaced(&f.name)));
        // A file of the repo that cannot be read or decoded is a problem of the result
        // too, unless the import replaces it.
        unreadable.extend(
            sources
                .problems
                .into_iter()
                .filter(|p| p.at.as_ref().is_none_or(|at| !replaced(&at.file.name))),
        );
    }
    files.extend(
        plan.files
            .iter()
            .map(|(p, t)| SourceFile::new(p.clone(), t.clone())),
    );
    let mut diags = Diagnostics::default();
    let mut repo = parse_files(files, &mut diags);
    repo.unread.extend(
        unreadable
            .iter()
            .filter_map(|p| p.at.as_ref().map(|at| at.file.name.clone())),
    );
    diags.extend(unreadable);
    validate(&repo, catalogue, &mut diags);
    diags.sort();
    if diags.has_errors() {
        report(out, &diags);
        return Err(Failure::new(
            format!(
                "the repo would not validate after the import ({})",
                crate::text::count(diags.error_count(), "error")
            ),
            "nothing was written; the problems above say why",
        ));
    }
    Ok(())
}
