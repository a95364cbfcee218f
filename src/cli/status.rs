//! `strata status`: sync status as Argo CD shows it — the followed ref and its head, the
//! last applied commit and whether this member's config repo serves it yet,
//! Synced / OutOfSync / Unknown with the reasons, the last error and the health of the
//! last run, as one member sees them.
//!
//! Exit 0: synced; 2: out of sync; 1: unknown (nothing to compare with, or the head
//! cannot be read or is not valid) or an error.

use std::fmt::Write;

use clap::Args;

use super::agent_args::TargetArgs;
use super::args::Format;
use super::connect::{connect, unexpected};
use super::log::utc;
use super::output::Output;
use super::{CliError, Outcome};
use crate::protocol::sync_status::{Health, Served, ServedState, Sync, SyncStatus};
use crate::protocol::{Request, Response};

/// `strata status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Runs `strata status`.
pub fn run(args: StatusArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    let status = match client.request(Request::Status)? {
        Response::Status(s) => *s,
        other => return Err(unexpected(other)),
    };
    match out.format {
        Format::Json => out.json(&serde_json::to_value(&status).unwrap_or_default()),
        _ => out.print(&render(&status)),
    }
    match status.sync {
        Sync::Synced => Ok(Outcome::Ok),
        Sync::OutOfSync => Ok(Outcome::Changes),
        // The status printed says why (the last error, or nothing to compare with).
        Sync::Unknown => Ok(Outcome::Failed),
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// The status for people.
pub fn render(s: &SyncStatus) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "machine:       {}", s.machine);
    match &s.source {
        Some(f) => {
            let heal = if f.self_heal {
                format!(", self-heal after {} s", f.grace_ms / 1000)
            } else {
                String::new()
            };
            let _ = writeln!(
                t,
                "following:     {} branch {} (mode {}{heal})",
                f.url, f.branch, f.mode
            );
        }
        None => {
            let _ = writeln!(t, "following:     nothing (this machine follows no repo)");
        }
    }
    if let Some(h) = &s.head {
        let _ = writeln!(
            t,
            "head:          {}  {}  \"{}\"",
            short(&h.commit),
            h.author,
            h.message
        );
    }
    match &s.last_applied {
        Some(a) => {
            let claimed = if a.origin_kind.verified() {
                String::new()
            } else {
                format!(" (claimed by {})", a.user)
            };
            let _ = writeln!(
                t,
                "last applied:  {}{claimed}  \"{}\"  change set {} at {} by {} on {}",
                short(&a.commit.commit),
                a.commit.message,
                a.change_set,
                utc(a.wall_ms),
                a.user,
                a.host
            );
        }
        None => {
            let _ = writeln!(t, "last applied:  no commit yet");
        }
    }
    if let Some(served) = &s.served {
        served_lines(
            &mut t,
            served,
            s.last_applied.as_ref().map(|a| a.commit.commit.as_str()),
        );
    }
    let against = if s.compared_with == "head" {
        "compared with the head"
    } else {
        "compared with what the last applied commit left"
    };
    let _ = writeln!(t, "sync:          {} ({against})", s.sync.as_str());
    for r in &s.reasons {
        let _ = writeln!(t, "  - {r}");
    }
    for i in &s.ignored {
        let _ = writeln!(t, "  {}", i.line());
    }
    for (n, r) in s.drift_ignore.iter().enumerate() {
        let label = if n == 0 { "drift-ignore:" } else { "" };
        let path = if r.path.is_empty() {
            " (the whole section)".to_owned()
        } else {
            format!(" {}", r.path)
        };
        let _ = writeln!(
            t,
            "{label:<15}`{}` covers {}/{}{path} until {}: {}",
            r.name, r.mode, r.section, r.until, r.reason
        );
    }
    if let Some(at) = s.heal_at_ms {
        let _ = writeln!(t, "self-heal:     reverts to the head at {}", utc(at));
    }
    for r in &s.rollouts {
        let _ = writeln!(t, "rollout:       {r}");
    }
    for trial in &s.trials {
        let _ = writeln!(
            t,
            "on trial:      change set {} is reverted at {} unless confirmed (`strata confirm`)",
            trial.change_set,
            utc(trial.reverts_at_ms)
        );
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(t, "last error:    {e}");
    }
    let run = &s.last_run;
    let when = run.at_ms.map(|ms| format!(" (last run {})", utc(ms)));
    let _ = writeln!(
        t,
        "health:        {}{}",
        run.health.as_str(),
        when.unwrap_or_default()
    );
    if run.health == Health::Degraded {
        if let Some(f) = &s.store_failure {
            let _ = writeln!(
                t,
                "  - the store cannot be written since {}: {} (nothing is acknowledged that is not written; the agent retries by itself)",
                utc(f.since_ms),
                f.error
            );
        }
        for h in &run.failed {
            let _ = writeln!(t, "  - hook {} failed: {}", h.command, h.status);
        }
    }
    t
}

/// The `serves:` line (what `git clone` from this member returns) and, while the last
/// applied commit's objects are fetched, how that goes.
fn served_lines(t: &mut String, s: &Served, last: Option<&str>) {
    let branch = match &s.commit {
        Some(c) => format!("{} at {}", s.branch, short(c)),
        None => format!("an empty repository (no {} yet)", s.branch),
    };
    let last = last.map(short).unwrap_or_default();
    let _ = match &s.state {
        ServedState::Current => writeln!(t, "serves:        {branch} (the last applied commit)"),
        ServedState::NothingApplied => writeln!(t, "serves:        {branch}"),
        ServedState::Held { why } => {
            writeln!(t, "serves:        {branch}, left alone: {why}")
        }
        ServedState::Fetching {
            tries,
            last_error,
            next_at_ms,
        } => {
            let _ = writeln!(
                t,
                "serves:        {branch}, not yet {last}: its objects are being fetched from the members"
            );
            if let Some(e) = last_error {
                let next = next_at_ms
                    .map(|at| format!(", next at {}", utc(at)))
                    .unwrap_or_default();
                let _ = writeln!(t, "  - {tries} tries, the last: {e}{next}");
            }
            Ok(())
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeSetId, Version};
    use crate::protocol::HookRun;
    use crate::protocol::sync_status::{AppliedCommit, CommitInfo, Followed, LastRun};

    fn status() -> SyncStatus {
        let commit = CommitInfo {
            commit: "8f2c1d0e9b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d".into(),
            author: "Ada <ada@example.com>".into(),
            message: "Paris gets its own resolver".into(),
        };
        SyncStatus {
            machine: "lab1.example.com".into(),
            source: Some(Followed {
                url: "/srv/americas".into(),
                branch: "main".into(),
                mode: "apply".into(),
                self_heal: true,
                grace_ms: 60_000,
            }),
            head: Some(commit.clone()),
            last_applied: Some(AppliedCommit {
                commit,
                change_set: ChangeSetId::of(&Version {
                    hlc: crate::model::Hlc(1),
                    origin: crate::model::MachineName::new("lab1.example.com").unwrap(),
                }),
                wall_ms: 1_790_000_000_000,
                user: "follow".into(),
                host: "lab1.example.com".into(),
                origin_kind: crate::model::OriginKind::Follower,
            }),
            sync: Sync::OutOfSync,
            compared_with: "head".into(),
            reasons: vec!["cluster/dns differs: written by admin on lab2.example.com (cli, change set 1a2b3c4d5e6f: \"rollback to change set 9f8e7d6c5b4a\")".into()],
            drift_ignore: vec![
                crate::drift_ignore::Shown {
                    name: "paris-dns".into(),
                    mode: "group:Paris".into(),
                    section: "dns".into(),
                    path: "server".into(),
                    until: "2027-01-31T00:00:00Z".into(),
                    reason: "INC-7: Paris moves resolvers".into(),
                },
                crate::drift_ignore::Shown {
                    name: "lab-ntp".into(),
                    mode: "machine:lab3.example.com".into(),
                    section: "ntp".into(),
                    path: String::new(),
                    until: "2027-03-01T00:00:00Z".into(),
                    reason: "lab".into(),
                },
            ],
            ignored: vec![crate::drift_ignore::Ignored {
                rule: "paris-dns".into(),
                until: "2027-01-31T00:00:00Z".into(),
                entries: vec!["group:Paris/dns".into()],
            }],
            heal_at_ms: Some(1_790_000_060_000),
            last_error: None,
            last_run: LastRun {
                health: Health::Degraded,
                at_ms: Some(1_790_000_001_000),
                sections: 1,
                failed: vec![HookRun {
                    command: "/usr/local/bin/reload-dns".into(),
                    ok: false,
                    status: "exit status 1".into(),
                    output: String::new(),
                }],
            },
            store_failure: Some(crate::state::StoreFailure {
                error: "I/O error: No space left on device (os error 28)".into(),
                since_ms: 1_790_000_002_000,
            }),
            served: Some(Served {
                branch: "main".into(),
                commit: Some("8f2c1d0e9b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d".into()),
                state: ServedState::Current,
            }),
            trials: vec![crate::protocol::sync_status::Trial {
                change_set: ChangeSetId::of(&Version {
                    hlc: crate::model::Hlc(2),
                    origin: crate::model::MachineName::new("lab1.example.com").unwrap(),
                }),
                reverts_at_ms: 1_790_000_300_000,
            }],
            rollouts: vec!["change set 6b5cdbb37a: wave 1 of 2 (canary: lab1.example.com) running; next: rest: lab2.example.com, lab3.example.com".into()],
        }
    }

    #[test]
    fn the_status_reads_as_argo_cds() {
        let text = render(&status());
        insta::with_settings!({filters => vec![
            (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "[TIME]"),
        ]}, {
            insta::assert_snapshot!(text, @r#"
            machine:       lab1.example.com
            following:     /srv/americas branch main (mode apply, self-heal after 60 s)
            head:          8f2c1d0e9b  Ada <ada@example.com>  "Paris gets its own resolver"
            last applied:  8f2c1d0e9b  "Paris gets its own resolver"  change set 0c3be10be2 at [TIME] by follow on lab1.example.com
            serves:        main at 8f2c1d0e9b (the last applied commit)
            sync:          OutOfSync (compared with the head)
              - cluster/dns differs: written by admin on lab2.example.com (cli, change set 1a2b3c4d5e6f: "rollback to change set 9f8e7d6c5b4a")
              1 difference ignored by drift-ignore rule `paris-dns` until 2027-01-31T00:00:00Z (group:Paris/dns)
            drift-ignore:  `paris-dns` covers group:Paris/dns server until 2027-01-31T00:00:00Z: INC-7: Paris moves resolvers
                           `lab-ntp` covers machine:lab3.example.com/ntp (the whole section) until 2027-03-01T00:00:00Z: lab
            self-heal:     reverts to the head at [TIME]
            rollout:       change set 6b5cdbb37a: wave 1 of 2 (canary: lab1.example.com) running; next: rest: lab2.example.com, lab3.example.com
            on trial:      change set 6b5cdbb37a is reverted at [TIME] unless confirmed (`strata confirm`)
            health:        Degraded (last run [TIME])
              - the store cannot be written since [TIME]: I/O error: No space left on device (os error 28) (nothing is acknowledged that is not written; the agent retries by itself)
              - hook /usr/local/bin/reload-dns failed: exit status 1
            "#);
        });
    }

    #[test]
    fn a_member_says_what_a_clone_from_it_returns_until_it_serves_the_last_applied_commit() {
        let lines = |state: ServedState, commit: Option<&str>| {
            let mut t = String::new();
            let served = Served {
                branch: "main".into(),
                commit: commit.map(str::to_owned),
                state,
            };
            served_lines(
                &mut t,
                &served,
                Some("8f2c1d0e9b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"),
            );
            t
        };
        let old = Some("1234567890abcdef1234567890abcdef12345678");
        let mut text = lines(
            ServedState::Fetching {
                tries: 0,
                last_error: None,
                next_at_ms: None,
            },
            None,
        );
        text += &lines(
            ServedState::Fetching {
                tries: 3,
                last_error: Some("lab2.example.com: commit 8f2c1d0e9b is not here".into()),
                next_at_ms: Some(1_790_000_060_000),
            },
            old,
        );
        text += &lines(
            ServedState::Held {
                why: "the last applied commit 8f2c1d0e9b does not descend from it".into(),
            },
            old,
        );
        text += &lines(ServedState::NothingApplied, old);
        insta::with_settings!({filters => vec![
            (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "[TIME]"),
        ]}, {
            insta::assert_snapshot!(text, @r#"
            serves:        an empty repository (no main yet), not yet 8f2c1d0e9b: its objects are being fetched from the members
            serves:        main at 1234567890, not yet 8f2c1d0e9b: its objects are being fetched from the members
              - 3 tries, the last: lab2.example.com: commit 8f2c1d0e9b is not here, next at [TIME]
            serves:        main at 1234567890, left alone: the last applied commit 8f2c1d0e9b does not descend from it
            serves:        main at 1234567890
            "#);
        });
    }
}
