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
    report(response, out)
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

/// `2026-11-01 12:34:56 UTC` from milliseconds since the epoch.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_782_302_096_000), "2026-06-24 11:54:56 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
