//! `strata check` (AsyncOS `clustercheck`): asks a member to compare what every reachable
//! member holds and reports, in the seed's words, each entry that differs — which machine
//! holds which version, written by whom, where and when — with unreachable and
//! disconnected machines, running-config files edited by hand, and unresolved conflicts.
//! With `--repo`, also the drift between the cluster and the repo. `--resolve ENTRY --use
//! HOST` forces HOST's version everywhere as a new change set.
//!
//! Exit 0: consistent (and in sync with the repo); 2: inconsistency, drift or a member
//! that cannot write its store; 1: error.

use std::fmt::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::agent_args::TargetArgs;
use super::apply::report;
use super::args::Format;
use super::connect::{connect, unexpected};
use super::log::utc;
use super::output::Output;
use super::plan::desired_plan;
use super::{CliError, Failure, Outcome};
use crate::drift_ignore::{Ignored, Ignoring};
use crate::model::{Key, MachineName};
use crate::plan::{Change, Plan};
use crate::protocol::consistency::{CheckReport, Held, describe, parse_entry};
use crate::protocol::status::Reach;
use crate::protocol::{EditKind, Request, Response};

/// `strata check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also compare the cluster with this config repo (`--repo` alone: the current
    /// directory, as other commands default to): entries out of sync, members the repo
    /// does not declare (unmanaged), machines it declares that have not joined. What the
    /// repo's drift-ignore rules in force cover is not drift, and is named.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".",
          value_parser = super::args::absolute_path())]
    pub repo: Option<PathBuf>,
    /// With --repo: read the repo at this git ref (default: the working tree).
    #[arg(long = "ref", value_name = "REF", requires = "repo")]
    pub git_ref: Option<String>,
    /// Force one machine's version of an entry on the whole cluster, as a new change set:
    /// `SECTION@MODE` (dns@cluster, listeners@group:Paris, dns@machine:lab2) or an entry
    /// key as `check` prints it. Needs --use.
    #[arg(long, value_name = "SECTION@MODE", requires = "use_host")]
    pub resolve: Option<String>,
    /// The machine whose version --resolve forces.
    #[arg(long = "use", value_name = "HOST", requires = "resolve")]
    pub use_host: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `strata check --format json`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckJson {
    /// Whether the members agree and, with `--repo`, nothing drifted (exit 0).
    pub consistent: bool,
    /// Whether the members that answered hold the same versions of every entry.
    pub agree: bool,
    /// What the members hold.
    pub report: CheckReport,
    /// With `--repo`: how the cluster differs from the repo.
    pub drift: Option<Drift>,
}

/// Drift between the live cluster and a repo.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Drift {
    /// The ref read (`None`: the working tree).
    pub git_ref: Option<String>,
    /// Entries the repo and the cluster disagree on (`key`, what applying would do).
    pub out_of_sync: Vec<(String, &'static str)>,
    /// Members of the cluster the repo does not declare.
    pub unmanaged: Vec<String>,
    /// Machines the repo declares that have not joined.
    pub not_joined: Vec<String>,
    /// Differences the repo's drift-ignore rules in force cover, rule by rule: not drift,
    /// and said.
    pub ignored: Vec<Ignored>,
}

impl Drift {
    fn is_empty(&self) -> bool {
        self.out_of_sync.is_empty() && self.unmanaged.is_empty() && self.not_joined.is_empty()
    }
}

/// Runs `strata check`.
pub fn run(args: CheckArgs, out: &Output) -> Result<Outcome, CliError> {
    let mut client = connect(&args.target)?;
    if let (Some(entry), Some(host)) = (&args.resolve, &args.use_host) {
        let key = parse_entry(entry).map_err(|e| Failure::new(e, "see `strata check --help`"))?;
        let host = MachineName::new(host).map_err(|e| {
            Failure::new(
                format!("--use {host}: {e}"),
                "give a member's name, as `strata cluster list` shows it",
            )
        })?;
        let response = client.request(Request::CheckResolve { key, host })?;
        return report(
            response,
            out,
            &[],
            Some((&mut client, super::propagation::BRIEF, false)),
        );
    }
    let report = match client.request(Request::Check)? {
        Response::Check(r) => *r,
        other => return Err(unexpected(other)),
    };
    let drift = match &args.repo {
        Some(repo) => {
            let (plan, _, desired) =
                desired_plan(repo, args.git_ref.as_deref(), false, &mut client, out)?;
            // The repo's rules, by this machine's clock.
            let rules = crate::drift_ignore::section_of(desired.get(&crate::drift_ignore::key()));
            let mut ignoring = Ignoring::new(rules, crate::state::wall_ms());
            Some(drift_of(
                &plan,
                &report,
                args.git_ref.clone(),
                &mut ignoring,
            ))
        }
        None => None,
    };
    let clean = report.is_consistent() && drift.as_ref().is_none_or(Drift::is_empty);
    match out.format {
        Format::Json => out.json(&CheckJson {
            consistent: clean,
            agree: report.agrees(),
            report,
            drift,
        }),
        _ => out.print(&render(&report, drift.as_ref())),
    }
    Ok(if clean { Outcome::Ok } else { Outcome::Changes })
}

/// What a plan from the repo to the cluster says about drift, less what `ignoring`'s
/// rules cover.
pub fn drift_of(
    plan: &Plan,
    report: &CheckReport,
    git_ref: Option<String>,
    ignoring: &mut Ignoring,
) -> Drift {
    let mut drift = Drift {
        git_ref,
        ..Drift::default()
    };
    for action in &plan.actions {
        let (repo, live) = match &action.change {
            Change::Create { new } => (Some(new), None),
            Change::Change { old, new } => (Some(new), Some(old)),
            Change::Remove { old } => (None, Some(old)),
        };
        match (&action.key, &action.change) {
            (Key::Machine(m), Change::Remove { .. }) => drift.unmanaged.push(m.to_string()),
            (Key::Machine(m), Change::Create { .. }) => drift.not_joined.push(m.to_string()),
            (key, _) if ignoring.ignores(key, repo, live) => {}
            (key, change) => drift.out_of_sync.push((
                key.to_string(),
                match change {
                    Change::Create { .. } => "missing in the cluster",
                    Change::Change { .. } => "differs",
                    Change::Remove { .. } => "not in the repo",
                },
            )),
        }
    }
    for m in &report.machines {
        if m.reach == Reach::Expected && !drift.not_joined.contains(&m.machine.to_string()) {
            drift.not_joined.push(m.machine.to_string());
        }
    }
    drift.not_joined.sort();
    drift.ignored = ignoring.ignored();
    drift
}

/// The report for people, in the seed's words where the seed has them.
pub fn render(report: &CheckReport, drift: Option<&Drift>) -> String {
    let mut text = String::new();
    for m in &report.machines {
        match (m.reach, m.answered) {
            (Reach::Local | Reach::Direct | Reach::Routed, true) => match &m.store_failure {
                None => {
                    let _ = writeln!(text, "Checking {}...", m.machine);
                }
                Some(f) => {
                    let _ = writeln!(
                        text,
                        "Checking {}... Degraded: it cannot write its store since {}: {}",
                        m.machine,
                        utc(f.since_ms),
                        f.error
                    );
                }
            },
            (Reach::Local | Reach::Direct | Reach::Routed, false) => {
                let _ = writeln!(text, "Checking {}... no answer in time", m.machine);
            }
            (Reach::Unreachable, _) => {
                let _ = writeln!(text, "{} is unreachable: not checked", m.machine);
            }
            (Reach::Disconnected, _) => {
                let _ = writeln!(text, "{} is disconnected: not checked", m.machine);
            }
            (Reach::Expected, _) => {
                let _ = writeln!(text, "{} is declared but has not joined", m.machine);
            }
        }
    }
    let cluster = report.cluster.as_deref();
    if report.inconsistent.is_empty() {
        if report
            .machines
            .iter()
            .all(|m| m.answered || m.reach == Reach::Expected)
        {
            text.push_str("No inconsistencies found.\n");
        } else {
            text.push_str("No inconsistencies found among the machines that answered.\n");
        }
    } else {
        text.push_str("Inconsistency found!\n");
        for inc in &report.inconsistent {
            let _ = writeln!(text, "{}:", describe(&inc.key, cluster));
            for (machine, held) in &inc.held {
                let _ = writeln!(text, "{}", held_line(machine, held.as_ref()));
            }
            if let Some((host, _)) = inc
                .held
                .iter()
                .filter_map(|(m, h)| h.as_ref().map(|h| (m, h)))
                .max_by(|a, b| a.1.stamp.version.cmp(&b.1.stamp.version))
            {
                let _ = writeln!(
                    text,
                    "  to settle it: strata check --resolve {} --use {host}",
                    resolve_name(&inc.key)
                );
            }
        }
    }
    let edited: Vec<_> = report
        .machines
        .iter()
        .filter(|m| !m.local_edits.is_empty())
        .collect();
    if !edited.is_empty() {
        text.push_str("Running config edited by hand:\n");
        for m in edited {
            let files: Vec<String> = m
                .local_edits
                .iter()
                .map(|e| {
                    let how = match e.kind {
                        EditKind::Edited => "edited",
                        EditKind::Removed => "removed",
                        EditKind::Added => "added",
                    };
                    format!("{}.kdl {how}", e.section)
                })
                .collect();
            let _ = writeln!(text, "{}: {}", m.machine, files.join(", "));
        }
        text.push_str("  the agent rewrites them when it next runs its config (a change set that reaches it, or a restart)\n");
    }
    if !report.conflicts.is_empty() {
        text.push_str("Writes lost to concurrent ones (last writer wins), not settled yet:\n");
        for l in &report.conflicts {
            let _ = writeln!(
                text,
                "{}: '{}' on {} at {} lost to '{}' on {} at {}",
                describe(&l.key, cluster),
                l.lost.meta.author,
                l.lost.version.origin,
                utc(l.lost.wall_ms),
                l.winner.meta.author,
                l.winner.version.origin,
                utc(l.winner.wall_ms),
            );
        }
        text.push_str(
            "  the cluster agrees on the winner; keep it, or force a version, with `strata check --resolve ENTRY --use HOST` (`strata log --conflicts` keeps them all)\n",
        );
    }
    for w in &report.warnings {
        let _ = writeln!(text, "warning: {}\n  {}", w.message, w.help);
    }
    if let Some(d) = drift {
        let at = d
            .git_ref
            .as_deref()
            .map_or("the working tree".to_owned(), |r| format!("ref {r}"));
        if d.is_empty() {
            let _ = writeln!(text, "In sync with the repo ({at}).");
        } else {
            let _ = writeln!(text, "Drift from the repo ({at}):");
            for (key, what) in &d.out_of_sync {
                let _ = writeln!(text, "  out of sync: {key} ({what})");
            }
            for m in &d.unmanaged {
                let _ = writeln!(
                    text,
                    "  unmanaged: {m} is a member the repo does not declare"
                );
            }
            for m in &d.not_joined {
                let _ = writeln!(text, "  not joined: {m} is declared but not a member yet");
            }
            text.push_str(
                "  `strata plan` shows the changes; `strata apply` makes the cluster match\n",
            );
        }
        for i in &d.ignored {
            let _ = writeln!(text, "  {}", i.line());
        }
    }
    text
}

/// `lab2 was updated <time> by 'admin' on lab1`, as the seed writes it.
fn held_line(machine: &MachineName, held: Option<&Held>) -> String {
    match held {
        None => format!("{machine} has no such entry"),
        Some(h) => format!(
            "{machine} was {} {} by '{}' on {}",
            if h.removed { "removed" } else { "updated" },
            utc(h.stamp.wall_ms),
            h.stamp.meta.author,
            h.stamp.version.origin
        ),
    }
}

/// The name `--resolve` takes for `key`.
fn resolve_name(key: &Key) -> String {
    match key {
        Key::Section { mode, section } => format!("{section}@{mode}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ChangeMeta, Hlc, Source, Stamp, Version};
    use crate::protocol::LocalEdit;
    use crate::protocol::consistency::{Inconsistency, MachineCheck};
    use crate::state::LostWrite;

    const T: u64 = 1_764_648_000_000; // 2025-12-02 04:00:00 UTC

    fn m(name: &str) -> MachineName {
        MachineName::new(name).unwrap()
    }

    fn stamp(at: u64, origin: &str, author: &str) -> Stamp {
        Stamp {
            version: Version {
                hlc: Hlc::new(at, 0),
                origin: m(origin),
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

    fn machine(name: &str, reach: Reach, answered: bool) -> MachineCheck {
        MachineCheck {
            machine: m(name),
            reach,
            answered,
            change_sets: answered.then_some(12),
            local_edits: Vec::new(),
            store_failure: None,
        }
    }

    #[test]
    fn a_report_reads_as_the_seeds_clustercheck() {
        let mut lab2 = machine("lab2.example.com", Reach::Direct, true);
        lab2.store_failure = Some(crate::state::StoreFailure {
            error: "I/O error: No space left on device (os error 28)".into(),
            since_ms: T + 30_000,
        });
        let mut lab3 = machine("lab3.example.com", Reach::Routed, true);
        lab3.local_edits = vec![LocalEdit {
            section: "dns".into(),
            kind: EditKind::Edited,
        }];
        let report = CheckReport {
            cluster: Some("americas".into()),
            checked_from: m("lab1.example.com"),
            machines: vec![
                machine("lab1.example.com", Reach::Local, true),
                lab2,
                lab3,
                machine("lab4.example.com", Reach::Unreachable, false),
                machine("lab5.example.com", Reach::Disconnected, false),
                machine("lab6.example.com", Reach::Expected, false),
            ],
            inconsistent: vec![Inconsistency {
                key: "group:Paris/listeners".parse().unwrap(),
                held: [
                    (
                        m("lab1.example.com"),
                        Some(Held {
                            stamp: stamp(T, "lab1.example.com", "admin"),
                            removed: false,
                        }),
                    ),
                    (
                        m("lab2.example.com"),
                        Some(Held {
                            stamp: stamp(T + 61_000, "lab2.example.com", "ops"),
                            removed: true,
                        }),
                    ),
                    (m("lab3.example.com"), None),
                ]
                .into(),
            }],
            conflicts: vec![LostWrite {
                key: "cluster/dns".parse().unwrap(),
                lost: stamp(T - 5_000, "lab3.example.com", "bob"),
                value: None,
                winner: stamp(T - 4_000, "lab1.example.com", "admin"),
            }],
            warnings: Vec::new(),
        };
        let drift = Drift {
            git_ref: Some("main".into()),
            out_of_sync: vec![("cluster/ntp".into(), "differs")],
            unmanaged: vec!["lab9.example.com".into()],
            not_joined: vec!["lab6.example.com".into()],
            ignored: vec![Ignored {
                rule: "paris-dns".into(),
                until: "2027-01-31T00:00:00Z".into(),
                entries: vec![
                    "group:Paris/dns".into(),
                    "machine:lab3.example.com/dns".into(),
                ],
            }],
        };
        insta::assert_snapshot!(render(&report, Some(&drift)), @r#"
Checking lab1.example.com...
Checking lab2.example.com... Degraded: it cannot write its store since 2025-12-02 04:00:30 UTC: I/O error: No space left on device (os error 28)
Checking lab3.example.com...
lab4.example.com is unreachable: not checked
lab5.example.com is disconnected: not checked
lab6.example.com is declared but has not joined
Inconsistency found!
listeners at Group Paris:
lab1.example.com was updated 2025-12-02 04:00:00 UTC by 'admin' on lab1.example.com
lab2.example.com was removed 2025-12-02 04:01:01 UTC by 'ops' on lab2.example.com
lab3.example.com has no such entry
  to settle it: strata check --resolve listeners@group:Paris --use lab2.example.com
Running config edited by hand:
lab3.example.com: dns.kdl edited
  the agent rewrites them when it next runs its config (a change set that reaches it, or a restart)
Writes lost to concurrent ones (last writer wins), not settled yet:
dns at Cluster americas: 'bob' on lab3.example.com at 2025-12-02 03:59:55 UTC lost to 'admin' on lab1.example.com at 2025-12-02 03:59:56 UTC
  the cluster agrees on the winner; keep it, or force a version, with `strata check --resolve ENTRY --use HOST` (`strata log --conflicts` keeps them all)
Drift from the repo (ref main):
  out of sync: cluster/ntp (differs)
  unmanaged: lab9.example.com is a member the repo does not declare
  not joined: lab6.example.com is declared but not a member yet
  `strata plan` shows the changes; `strata apply` makes the cluster match
  2 differences ignored by drift-ignore rule `paris-dns` until 2027-01-31T00:00:00Z (group:Paris/dns, machine:lab3.example.com/dns)
"#);
    }

    #[test]
    fn a_clean_report_says_so() {
        let report = CheckReport {
            cluster: Some("americas".into()),
            checked_from: m("losangeles"),
            machines: vec![
                machine("losangeles", Reach::Local, true),
                machine("newyork", Reach::Direct, true),
            ],
            inconsistent: Vec::new(),
            conflicts: Vec::new(),
            warnings: Vec::new(),
        };
        insta::assert_snapshot!(render(&report, None), @r#"
Checking losangeles...
Checking newyork...
No inconsistencies found.
"#);
    }

    #[test]
    fn mixed_appliance_versions_are_a_warning_not_an_inconsistency() {
        let member = |v: Option<&str>| crate::model::Membership {
            appliance_version: v.map(str::to_owned),
            ..crate::model::Membership::undeclared(crate::model::GroupName::main(), "x")
        };
        let members = [
            (m("losangeles"), member(Some("15.0.1-416"))),
            (m("newyork"), member(Some("14.2.0-620"))),
            (m("paris"), member(None)),
        ]
        .into();
        let report = CheckReport {
            cluster: Some("americas".into()),
            checked_from: m("losangeles"),
            machines: vec![machine("losangeles", Reach::Local, true)],
            inconsistent: Vec::new(),
            conflicts: Vec::new(),
            warnings: crate::protocol::consistency::version_warnings(&members),
        };
        assert!(report.is_consistent());
        insta::assert_snapshot!(render(&report, None), @r"
        Checking losangeles...
        No inconsistencies found.
        warning: the members run different appliance versions: 14.2.0-620 on newyork; 15.0.1-416 on losangeles
          the seed's rule: a cluster consists entirely of machines running the same AsyncOS version; upgrade one machine at a time (`strata cluster disconnect`, upgrade, `strata cluster reconnect`) until all run the same
        ");
    }
}
