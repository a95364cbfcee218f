//! `strata where SECTION`: the modes that define a section and the machines each reaches.

use super::args::{Format, WhereArgs};
use super::output::Output;
use super::{CliError, Failure, Outcome, load_valid};
use crate::report;

/// Runs `strata where`.
pub fn run(args: WhereArgs, out: &Output) -> Result<Outcome, CliError> {
    let checked = load_valid(&args.repo.repo, out)?;
    let section = args.section.as_str();
    if checked.catalogue.get(section).is_none() {
        return Err(Failure::new(
            format!("unknown section `{section}`"),
            checked.catalogue.unknown_section_help(section),
        ));
    }
    match out.format {
        Format::Json => out.json(&report::where_json(
            &checked.repo,
            &checked.catalogue,
            section,
        )),
        _ => out.print(&report::where_text(
            &checked.repo,
            &checked.catalogue,
            section,
        )),
    }
    Ok(Outcome::Ok)
}
