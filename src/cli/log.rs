//! `strata log` (the applied change sets) and `strata rollback --to ID` (restore an
//! earlier state as a new change set, shown and asked first).

use std::fmt::Write;

use super::agent_args::{LogArgs, RollbackArgs};
use super::apply::report;
use super::args::Format;
use super::confirm::{Question, confirm};
use super::connect::{connect, unexpected};
use super::json::{ApplyJson, ConflictsJson, LogJson};
use super::output::Output;
use super::{CliError, Failure, Outcome};
use crate::plan::render_human;
use crate::protocol::{Request, Response, Shown};
use crate::state::{ChangeSetSummary, Key, LostWrite};

/// Runs `strata log`.
pub fn run(args: LogArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    if args.conflicts {
        let lost = match client.request(Request::Conflicts)? {
            Response::Conflicts { lost, .. } => lost,
            other => return Err(unexpected(other)),
        };
        match out.format {
            Format::Json => out.json(&ConflictsJson {
                machine: client.machine,
                conflicts: lost,
            }),
            _ => out.print(&render_conflicts(&lost)),
        }
        return Ok(Outcome::Ok);
    }
    let mut sets = match client.request(Request::Log)? {
        Response::Log { change_sets } => change_sets,
        other => return Err(unexpected(other)),
    };
    // Newest first, in JSON as for people (as `git log`); `-n` keeps the newest N.
    sets.reverse();
    if let Some(n) = args.max_count {
        sets.truncate(n);
    }
    match out.format {
        Format::Json => out.json(&LogJson {
            machine: client.machine,
            change_sets: sets,
        }),
        _ => out.print(&render_log(&sets)),
    }
    Ok(Outcome::Ok)
}

/// Runs `strata rollback`: shows what the rollback changes (the agent computes it), asks
/// (or takes --yes), then rolls back — exactly what was shown, or it is refused as stale.
pub fn rollback(args: RollbackArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    let plan = match client.request(Request::RollbackPlan {
        to: args.to.clone(),
    })? {
        Response::RollbackPlan { plan } => *plan,
        other => return Err(unexpected(other)),
    };
    if plan.is_empty() {
        match out.format {
            Format::Json => out.json(&ApplyJson::unchanged()),
            _ => out.print(&format!(
                "no changes: the live state is already the state as of change set {}\n",
                args.to
            )),
        }
        return Ok(Outcome::Ok);
    }
    let hazards = plan.hazards(&client.machine);
    if out.format != Format::Json {
        let mut text = render_human(&plan);
        for h in &hazards {
            text.push_str(&format!("\nwarning: this rollback {h}\n"));
        }
        out.print(&text);
    }
    let question = Question {
        command: "rollback",
        done: "rolled back",
        through: &client.machine,
    };
    confirm(&question, args.yes, out)?;
    let response = client.request(Request::Rollback {
        to: args.to.clone(),
        shown: Some(Shown {
            writes: plan.writes(),
            base: plan.base.clone(),
        }),
    })?;
    if let Response::Stale { conflicts } = &response {
        let lines: Vec<String> = conflicts.iter().map(|c| format!("  {c}")).collect();
        return Err(Failure::refused(
            format!(
                "not rolled back: the cluster changed since the rollback was shown\n{}",
                lines.join("\n")
            ),
            "nothing was written; run `strata rollback` again and review what it shows",
        ));
    }
    report(
        response,
        out,
        &hazards,
        Some((&mut client, super::propagation::BRIEF, false)),
    )
}

/// What a change set is to commit confirmed or a staged rollout, as a line of the log.
fn trial_or_rollout(meta: &crate::model::ChangeMeta) -> Option<String> {
    use crate::model::{ChangeSetId, Confirm, Rollout};
    let trial = meta.confirm.as_ref().map(|c| match c {
        Confirm::Trial { by_ms } => format!(
            "on trial: every machine reverts it unless confirmed by {}",
            utc(*by_ms)
        ),
        Confirm::Confirms { version } => {
            format!("confirms change set {}", ChangeSetId::of(version))
        }
        Confirm::Reverts { version } => format!("reverts change set {}", ChangeSetId::of(version)),
    });
    let rollout = meta.rollout.as_ref().map(|r| match r {
        Rollout::Staged { waves, .. } => {
            let waves: Vec<String> = waves
                .iter()
                .map(|w| {
                    let names: Vec<&str> = w.machines.iter().map(|m| m.as_str()).collect();
                    format!("{} ({})", w.name, names.join(", "))
                })
                .collect();
            format!("staged in waves: {}", waves.join(", "))
        }
        Rollout::Released { version, wave } => format!(
            "releases wave {} of change set {}",
            wave + 1,
            ChangeSetId::of(version)
        ),
        Rollout::Halted { version, wave, .. } => format!(
            "halts the rollout of change set {} at wave {}",
            ChangeSetId::of(version),
            wave + 1
        ),
    });
    match (trial, rollout) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

/// The log for people: `sets` newest first. Each change set shows its id (the same on
/// every machine, short as git shows commits) and its position in this machine's history.
pub fn render_log(sets: &[ChangeSetSummary]) -> String {
    if sets.is_empty() {
        return "no change sets yet\n".into();
    }
    let mut text = String::new();
    for cs in sets {
        let _ = writeln!(
            text,
            "change set {}  #{}  {}  {}\n  author: {}  user: {}  host: {}\n  {}",
            cs.id,
            cs.seq,
            utc(cs.wall_ms),
            cs.meta.source_shown(),
            cs.meta.author,
            cs.meta.user,
            cs.meta.host,
            cs.meta.message.lines().next().unwrap_or_default()
        );
        if let Some(line) = trial_or_rollout(&cs.meta) {
            let _ = writeln!(text, "  {line}");
        }
        let sections: Vec<String> = cs.keys.iter().map(Key::to_string).collect();
        let shown = sections.len().min(8);
        if sections.is_empty() {
            text.push_str("  touched nothing");
        } else {
            let _ = write!(
                text,
                "  touched {}: {}",
                sections.len(),
                sections[..shown].join(", ")
            );
        }
        if sections.len() > shown {
            let _ = write!(text, " and {} more", sections.len() - shown);
        }
        text.push_str("\n\n");
    }
    text
}

/// The conflict log for people, newest loss first: what lost, who wrote it, where and
/// when, and what won instead.
pub fn render_conflicts(lost: &[LostWrite]) -> String {
    if lost.is_empty() {
        return "no conflicts: no write was lost to a concurrent one\n".into();
    }
    let mut sorted: Vec<&LostWrite> = lost.iter().collect();
    sorted.sort_by(|a, b| b.lost.version.cmp(&a.lost.version));
    let mut text = String::new();
    for l in sorted {
        let _ = writeln!(
            text,
            "{} {} lost\n  lost:  change set {}  {}  by '{}' on {} ({})\n  won:   change set {}  {}  by '{}' on {} ({})\n",
            l.key,
            if l.value.is_none() {
                "removal"
            } else {
                "write"
            },
            l.lost.change_set(),
            utc(l.lost.wall_ms),
            l.lost.meta.author,
            l.lost.version.origin,
            l.lost.meta.source,
            l.winner.change_set(),
            utc(l.winner.wall_ms),
            l.winner.meta.author,
            l.winner.version.origin,
            l.winner.meta.source,
        );
    }
    text
}

pub use crate::text::utc;

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

    #[test]
    fn trials_and_rollouts_say_what_they_are() {
        use crate::model::{
            ChangeMeta, ChangeSetId, Confirm, Hlc, MachineName, Rollout, Source, Version, Wave,
        };
        let version = |at: u64| Version {
            hlc: Hlc::new(at, 0),
            origin: MachineName::new("lab1").unwrap(),
        };
        let summary = |at: u64, message: &str, confirm, rollout, keys: Vec<crate::model::Key>| {
            ChangeSetSummary {
                id: ChangeSetId::of(&version(at)),
                seq: at,
                version: version(at),
                wall_ms: 1_782_302_096_000 + at,
                meta: ChangeMeta {
                    author: "ada".into(),
                    user: "ada".into(),
                    host: "lab1".into(),
                    source: Source::Cli,
                    message: message.into(),
                    origin_kind: Default::default(),
                    confirm,
                    rollout,
                },
                keys,
            }
        };
        let dns: crate::model::Key = "cluster/dns".parse().unwrap();
        let text = render_log(&[
            summary(
                2,
                "confirm",
                Some(Confirm::Confirms {
                    version: version(1),
                }),
                None,
                Vec::new(),
            ),
            summary(
                1,
                "dns: move to .99",
                Some(Confirm::Trial {
                    by_ms: 1_782_302_396_000,
                }),
                Some(Rollout::Staged {
                    waves: vec![
                        Wave {
                            name: "canary".into(),
                            machines: vec![MachineName::new("lab1").unwrap()],
                        },
                        Wave {
                            name: "rest".into(),
                            machines: vec![MachineName::new("lab2").unwrap()],
                        },
                    ],
                    pause_ms: 0,
                    gate_timeout_ms: 60_000,
                    revert_on_failure: false,
                }),
                vec![dns],
            ),
        ]);
        insta::with_settings!({ filters => vec![(r"change set [0-9a-f]{10}", "change set [ID]")] }, {
            insta::assert_snapshot!(text, @r"
            change set [ID]  #2  2026-06-24 11:54:56 UTC  cli
              author: ada  user: ada  host: lab1
              confirm
              confirms change set [ID]
              touched nothing

            change set [ID]  #1  2026-06-24 11:54:56 UTC  cli
              author: ada  user: ada  host: lab1
              dns: move to .99
              on trial: every machine reverts it unless confirmed by 2026-06-24 11:59:56 UTC; staged in waves: canary (lab1), rest (lab2)
              touched 1: cluster/dns
            ");
        });
    }
}

#[cfg(test)]
mod conflict_tests {
    use super::*;
    use crate::model::{ChangeMeta, Hlc, MachineName, Source, Stamp, Version};

    fn stamp(at: u64, origin: &str, author: &str) -> Stamp {
        Stamp {
            version: Version {
                hlc: Hlc::new(at, 0),
                origin: MachineName::new(origin).unwrap(),
            },
            wall_ms: at,
            meta: ChangeMeta {
                author: author.into(),
                user: author.into(),
                host: origin.into(),
                source: Source::Cli,
                message: String::new(),
                origin_kind: Default::default(),
                confirm: None,
                rollout: None,
            },
        }
    }

    #[test]
    fn the_conflict_log_names_who_lost_where_and_when() {
        assert!(render_conflicts(&[]).starts_with("no conflicts"));
        let t = 1_764_648_000_000;
        let lost = [LostWrite {
            key: "cluster/dns".parse().unwrap(),
            lost: stamp(t, "lab4.example.com", "bob"),
            value: None,
            winner: stamp(t + 2_000, "lab1.example.com", "admin"),
        }];
        insta::assert_snapshot!(render_conflicts(&lost), @r#"
cluster/dns removal lost
  lost:  change set 78228ff888  2025-12-02 04:00:00 UTC  by 'bob' on lab4.example.com (cli)
  won:   change set 76a5c26e8a  2025-12-02 04:00:02 UTC  by 'admin' on lab1.example.com (cli)
"#);
    }
}
