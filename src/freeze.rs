//! Change freezes, pure: the windows of a `change-freeze` section and whether one is open
//! at a given time. Every agent asks this of its own clock before it commits a change an
//! operator or a repo asked for (see `agent::follow_guard`'s neighbour in the core), so a
//! freeze holds on every member, also one cut off from the rest.
//!
//! A window is absolute — `from`/`until` as RFC 3339 times — or weekly — `days` (mon …
//! sun) with `from`/`until` as UTC `HH:MM`; an `until` not after `from` ends the next day.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, Weekday};

use crate::model::{Node, Value};

/// The section that declares freezes.
pub const SECTION: &str = "change-freeze";

/// One freeze window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Its name in the section.
    pub name: String,
    /// Why the cluster is frozen.
    pub reason: String,
    /// When it is open.
    pub when: When,
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// From one instant until another (Unix ms, until excluded).
    Between(i64, i64),
    /// Each week on `days`, from minute `from` of the day until minute `until` (UTC);
    /// past midnight when `until <= from`.
    Weekly {
        /// The days it opens on.
        days: Vec<Weekday>,
        /// Minute of the day it opens.
        from: u32,
        /// Minute of the day it closes.
        until: u32,
    },
}

impl Window {
    /// True when the window is open at `ms` (Unix ms, UTC).
    pub fn is_open(&self, ms: u64) -> bool {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        match &self.when {
            When::Between(from, until) => *from <= ms && ms < *until,
            When::Weekly { days, from, until } => {
                let Ok(at) = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
                    return false;
                };
                let minute = u32::from(at.hour()) * 60 + u32::from(at.minute());
                let today = days.contains(&at.weekday());
                let yesterday = days.contains(&at.weekday().previous());
                if from < until {
                    today && *from <= minute && minute < *until
                } else {
                    (today && minute >= *from) || (yesterday && minute < *until)
                }
            }
        }
    }
}

/// The windows of a `change-freeze` section, or what is wrong with one of them (its name
/// and the problem).
pub fn windows(section: &Node) -> Result<Vec<Window>, String> {
    section
        .children
        .iter()
        .filter(|n| n.name == "window")
        .map(window)
        .collect()
}

fn window(node: &Node) -> Result<Window, String> {
    let name = node
        .args
        .first()
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let text = |k: &str| node.prop(k).and_then(Value::as_str).unwrap_or_default();
    let fail = |what: String| format!("change-freeze window `{name}`: {what}");
    let when = if node.prop("days").is_some() {
        let days = text("days")
            .split_whitespace()
            .map(|d| {
                weekday(d).ok_or_else(|| {
                    fail(format!(
                        "`{d}` is not a day: write mon tue wed thu fri sat sun"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if days.is_empty() {
            return Err(fail("`days` names no day".into()));
        }
        let minute = |k: &str| {
            clock(text(k)).ok_or_else(|| {
                fail(format!(
                    "{k}=\"{}\" is not a UTC time of day: write HH:MM",
                    text(k)
                ))
            })
        };
        When::Weekly {
            days,
            from: minute("from")?,
            until: minute("until")?,
        }
    } else {
        let instant = |k: &str| {
            OffsetDateTime::parse(text(k), &Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|_| {
                    fail(format!(
                        "{k}=\"{}\" is not an RFC 3339 time (2026-12-20T00:00:00Z); a weekly window also gives `days`",
                        text(k)
                    ))
                })
        };
        let (from, until) = (instant("from")?, instant("until")?);
        if until <= from {
            return Err(fail("it ends before it starts".into()));
        }
        When::Between(from, until)
    };
    Ok(Window {
        reason: text("reason").to_owned(),
        name,
        when,
    })
}

fn weekday(d: &str) -> Option<Weekday> {
    Some(match d {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

/// `HH:MM` as a minute of the day.
fn clock(t: &str) -> Option<u32> {
    let (h, m) = t.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && t.len() == 5).then_some(h * 60 + m)
}

/// The first window of `section` open at `ms`, if any. A section whose windows do not
/// read (which `validate` and the agent's checks refuse to store) freezes nothing.
pub fn open_at(section: &Node, ms: u64) -> Option<Window> {
    windows(section).ok()?.into_iter().find(|w| w.is_open(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> Node {
        let doc: kdl::KdlDocument = text.parse().unwrap();
        Node::from_kdl(&doc.nodes()[0])
    }

    /// Unix ms of an RFC 3339 time.
    fn at(t: &str) -> u64 {
        (OffsetDateTime::parse(t, &Rfc3339).unwrap().unix_timestamp() * 1000) as u64
    }

    #[test]
    fn absolute_and_weekly_windows_open_and_close() {
        let s = section(
            r#"change-freeze {
                window "year-end" from="2026-12-20T00:00:00Z" until="2027-01-04T00:00:00Z" reason="year end"
                window "weekend" days="fri" from="22:00" until="06:00" reason="weekend"
            }"#,
        );
        assert_eq!(
            open_at(&s, at("2026-12-19T23:59:59Z")).map(|w| w.name),
            None
        );
        assert_eq!(
            open_at(&s, at("2026-12-20T00:00:00Z")).unwrap().reason,
            "year end"
        );
        assert_eq!(
            open_at(&s, at("2027-01-04T00:00:00Z")),
            None,
            "until is excluded"
        );
        // 2026-12-04 is a Friday: open from 22:00 until Saturday 06:00.
        assert_eq!(open_at(&s, at("2026-12-04T21:59:00Z")), None);
        assert_eq!(
            open_at(&s, at("2026-12-04T22:00:00Z")).unwrap().name,
            "weekend"
        );
        assert_eq!(
            open_at(&s, at("2026-12-05T05:59:00Z")).unwrap().name,
            "weekend"
        );
        assert_eq!(open_at(&s, at("2026-12-05T06:00:00Z")), None);
        let day = section(
            r#"change-freeze { window "w" days="mon wed" from="09:00" until="17:00" reason="r"; }"#,
        );
        assert!(
            open_at(&day, at("2026-12-07T09:00:00Z")).is_some(),
            "Monday"
        );
        assert!(
            open_at(&day, at("2026-12-08T10:00:00Z")).is_none(),
            "Tuesday"
        );
    }

    #[test]
    fn a_window_that_does_not_read_says_which_and_why() {
        let bad = |t: &str| windows(&section(t)).unwrap_err();
        assert!(bad(r#"change-freeze { window "x" from="tomorrow" until="2027-01-01T00:00:00Z" reason="r"; }"#)
            .contains("window `x`: from=\"tomorrow\" is not an RFC 3339 time"));
        assert!(bad(r#"change-freeze { window "x" days="someday" from="09:00" until="10:00" reason="r"; }"#)
            .contains("`someday` is not a day"));
        assert!(
            bad(r#"change-freeze { window "x" days="mon" from="9" until="10:00" reason="r"; }"#)
                .contains("is not a UTC time of day")
        );
        assert!(bad(r#"change-freeze { window "x" from="2027-01-02T00:00:00Z" until="2027-01-01T00:00:00Z" reason="r"; }"#)
            .contains("ends before it starts"));
    }
}
