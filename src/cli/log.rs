//! `strata log` (the applied change sets) and `strata rollback --to ID` (restore an
//! earlier state as a new change set).

use std::fmt::Write;

use serde_json::json;

use super::agent_args::{LogArgs, RollbackArgs};
use super::apply::report;
use super::args::Format;
use super::connect::{connect, unexpected};
use super::output::Output;
use super::{CliError, Outcome};
use crate::mesh::{Request, Response};
use crate::state::{ChangeSetSummary, Key};

/// Runs `strata log`.
pub fn run(args: LogArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    let sets = match client.request(Request::Log)? {
        Response::Log { change_sets } => change_sets,
        other => return Err(unexpected(other)),
    };
    match out.format {
        Format::Json => out.json(&json!({ "machine": client.machine, "change_sets": sets })),
        _ => out.print(&render_log(&sets)),
    }
    Ok(Outcome::Ok)
}

/// Runs `strata rollback`.
pub fn rollback(args: RollbackArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    let response = client.request(Request::Rollback {
        to: args.to.clone(),
    })?;
    report(response, out, &[])
}

/// The log for people, newest first. Each change set shows its id (the same on every
/// machine, short as git shows commits) and its position in this machine's history.
pub fn render_log(sets: &[ChangeSetSummary]) -> String {
    if sets.is_empty() {
        return "no change sets yet\n".into();
    }
    let mut text = String::new();
    for cs in sets.iter().rev() {
        let _ = writeln!(
            text,
            "change set {}  #{}  {}  {}\n  author: {}  user: {}  host: {}\n  {}",
            cs.id,
            cs.seq,
            utc(cs.wall_ms),
            cs.meta.source,
            cs.meta.author,
            cs.meta.user,
            cs.meta.host,
            cs.meta.message.lines().next().unwrap_or_default()
        );
        let sections: Vec<String> = cs.keys.iter().map(Key::to_string).collect();
        let shown = sections.len().min(8);
        let _ = write!(
            text,
            "  touched {}: {}",
            sections.len(),
            sections[..shown].join(", ")
        );
        if sections.len() > shown {
            let _ = write!(text, " and {} more", sections.len() - shown);
        }
        text.push_str("\n\n");
    }
    text
}

/// `2026-11-01 12:34:56 UTC` from milliseconds since the epoch (the calendar is the
/// `time` crate's); a time past year 9999 prints as milliseconds.
pub fn utc(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{ms} ms after 1970-01-01 UTC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_782_302_096_000), "2026-06-24 11:54:56 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(253_402_300_799_999), "9999-12-31 23:59:59 UTC");
        assert_eq!(
            utc(u64::MAX),
            "18446744073709551615 ms after 1970-01-01 UTC"
        );
    }
}
