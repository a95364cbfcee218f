//! Per-machine propagation of a change set (the seed's `commitdetail`): after `apply`,
//! `rollback` or `check --resolve` committed one, the agent is asked where it stands on
//! every member — briefly by default, up to `--wait` when given.

use std::fmt::Write;
use std::time::Duration;

use super::connect::Client;
use super::log::utc;
use crate::model::Version;
use crate::protocol::consistency::MachinePropagation;
use crate::protocol::status::Reach;
use crate::protocol::{Request, Response, RunState};

/// How long an apply without `--wait` lets the change set spread before it reports.
pub const BRIEF: Duration = Duration::from_secs(1);

/// Parses `--wait`'s timeout: seconds (`30`, `30s`), minutes (`2m`) or milliseconds
/// (`500ms`).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::config::agent_kdl::parse_duration(text).map_err(|_| {
        format!("`{text}` is not a timeout: write 30 (seconds), 30s, 2m, 1h30m or 500ms")
    })
}

/// Parses `--confirm-within`'s window: as a timeout, and at least a second.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let window = crate::config::agent_kdl::parse_duration(text)
        .map_err(|_| format!("`{text}` is not a duration: write 90 (seconds), 90s, 5m or 1h30m"))?;
    if window < Duration::from_secs(1) {
        return Err(format!(
            "`{text}` is too short to confirm in: give at least 1s"
        ));
    }
    Ok(window)
}

/// Asks where change set `version` stands on every member, waiting up to `wait`. `None`
/// when the agent cannot say (it runs no mesh).
pub fn ask(
    client: &mut Client,
    version: &Version,
    wait: Duration,
) -> Option<Vec<MachinePropagation>> {
    match client.request(Request::Propagation {
        version: version.clone(),
        wait_ms: wait.as_millis() as u64,
    }) {
        Ok(Response::Propagation { machines, .. }) => Some(machines),
        _ => None,
    }
}

/// True when every member that could be reached has applied it (or waits for its wave
/// of a staged rollout).
pub fn complete(machines: &[MachinePropagation]) -> bool {
    machines
        .iter()
        .filter(|m| reachable(m.reach))
        .all(|m| m.state.is_some_and(RunState::settled))
}

fn reachable(reach: Reach) -> bool {
    matches!(reach, Reach::Local | Reach::Direct | Reach::Routed)
}

/// The report for people: one line per member.
pub fn render(machines: &[MachinePropagation]) -> String {
    let applied = machines
        .iter()
        .filter(|m| matches!(m.state, Some(RunState::Applied { .. })))
        .count();
    let mut text = format!(
        "propagation: applied on {applied} of {} machines\n",
        machines.len()
    );
    for m in machines {
        let what = match (&m.state, m.reach) {
            (Some(RunState::Applied { at_ms: Some(ms) }), _) => format!("applied {}", utc(*ms)),
            (Some(RunState::Applied { at_ms: None }), _) => {
                "applied (before its agent last started)".into()
            }
            (Some(RunState::Running), _) => "stored, running its config now".into(),
            (Some(RunState::Missing), _) => "not there yet".into(),
            (Some(RunState::Waiting), _) => {
                "stored; waits for its wave of the rollout (runs what it ran)".into()
            }
            (None, Reach::Disconnected) => {
                "disconnected: it gets the change set when reconnected".into()
            }
            (None, Reach::Unreachable) => {
                "unreachable: it gets the change set when it is back".into()
            }
            (None, _) => "did not answer".into(),
        };
        let _ = writeln!(text, "  {:<28} {what}", m.machine.as_str());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MachineName;

    fn p(name: &str, reach: Reach, state: Option<RunState>) -> MachinePropagation {
        MachinePropagation {
            machine: MachineName::new(name).unwrap(),
            reach,
            state,
        }
    }

    #[test]
    fn each_member_says_where_the_change_set_is() {
        let machines = vec![
            p(
                "lab1.example.com",
                Reach::Local,
                Some(RunState::Applied {
                    at_ms: Some(1_764_648_000_000),
                }),
            ),
            p(
                "lab2.example.com",
                Reach::Direct,
                Some(RunState::Applied { at_ms: None }),
            ),
            p("lab3.example.com", Reach::Routed, Some(RunState::Running)),
            p("lab4.example.com", Reach::Direct, Some(RunState::Missing)),
            p("lab5.example.com", Reach::Unreachable, None),
            p("lab6.example.com", Reach::Disconnected, None),
            p("lab7.example.com", Reach::Direct, None),
        ];
        assert!(!complete(&machines));
        assert!(complete(&machines[..2]));
        assert!(
            complete(&[machines[0].clone(), machines[4].clone()]),
            "the unreachable are not waited for"
        );
        insta::assert_snapshot!(render(&machines), @r#"
propagation: applied on 2 of 7 machines
  lab1.example.com             applied 2025-12-02 04:00:00 UTC
  lab2.example.com             applied (before its agent last started)
  lab3.example.com             stored, running its config now
  lab4.example.com             not there yet
  lab5.example.com             unreachable: it gets the change set when it is back
  lab6.example.com             disconnected: it gets the change set when reconnected
  lab7.example.com             did not answer
"#);
    }

    #[test]
    fn timeouts_read_as_people_write_them() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_timeout("soon").unwrap_err().contains("30s"));
    }
}
