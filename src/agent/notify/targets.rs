//! Who receives an alert, read from the machine's effective `alerts` section (as its
//! running config holds it, secrets decrypted), and what they receive. Pure: the section
//! is parsed from its KDL text; matching follows the seed's classes and severities
//! (`class "clustering" "critical" "warning"`; `all`, or no severities, for every one).

use kdl::{KdlDocument, KdlNode};
use serde_json::json;

/// How bad an alert is, in the seed's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One alert: what happened, to which machine, reported by which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `peer-lost`, `peer-recovered`, `hook-failed`.
    pub kind: &'static str,
    /// The seed's alert class: `clustering`.
    pub class: &'static str,
    pub severity: Severity,
    /// The machine it is about.
    pub machine: String,
    /// The machine that reports it.
    pub reported_by: String,
    /// When, milliseconds since the epoch (the reporter's clock).
    pub at_ms: u64,
    /// One line for people: what happened.
    pub summary: String,
}

impl Event {
    /// The mail subject: `[strata] critical: lab3.example.com cannot be reached`.
    pub fn subject(&self) -> String {
        format!("[strata] {}: {}", self.severity.as_str(), self.summary)
    }

    /// The mail body and the text of a Slack-compatible webhook.
    pub fn text(&self, when: &str) -> String {
        format!(
            "{}\n\nalert:       {} (class {}, severity {})\nmachine:     {}\nreported by: {}\nat:          {when}\n",
            self.summary,
            self.kind,
            self.class,
            self.severity.as_str(),
            self.machine,
            self.reported_by,
        )
    }

    /// The JSON a webhook gets: `format "json"` the event's fields, `format "slack"`
    /// `{"text": …}`.
    pub fn webhook_body(&self, format: WebhookFormat, when: &str) -> serde_json::Value {
        match format {
            WebhookFormat::Json => json!({
                "alert": self.kind,
                "class": self.class,
                "severity": self.severity.as_str(),
                "machine": self.machine,
                "reported_by": self.reported_by,
                "at": when,
                "summary": self.summary,
            }),
            WebhookFormat::Slack => {
                json!({ "text": format!("{}\n{}", self.subject(), self.text(when)) })
            }
        }
    }
}

/// The body a webhook takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Slack,
}

/// The SMTP relay alert mail goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    /// `starttls`, `tls` or `none`.
    pub tls: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Where one event goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    /// The From: address (`from=`; the caller supplies a default when absent).
    pub from: Option<String>,
    pub relay: Option<Relay>,
    /// Addresses whose classes take the event.
    pub emails: Vec<String>,
    /// URLs whose classes take the event, with their body format.
    pub webhooks: Vec<(String, WebhookFormat)>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.webhooks.is_empty()
    }
}

/// Whether a `class NAME SEVERITY…` list takes `event`.
fn takes(node: &KdlNode, event: &Event) -> bool {
    node.children().is_some_and(|c| {
        c.nodes()
            .iter()
            .filter(|n| n.name().value() == "class")
            .any(|class| {
                let words: Vec<&str> = class
                    .entries()
                    .iter()
                    .filter(|e| e.name().is_none())
                    .filter_map(|e| e.value().as_string())
                    .collect();
                let Some((name, severities)) = words.split_first() else {
                    return false;
                };
                (*name == "all" || *name == event.class)
                    && (severities.is_empty()
                        || severities
                            .iter()
                            .any(|s| *s == "all" || *s == event.severity.as_str()))
            })
    })
}

fn string_arg(node: &KdlNode) -> Option<String> {
    node.get(0).and_then(|v| v.as_string()).map(str::to_owned)
}

fn string_prop(node: &KdlNode, name: &str) -> Option<String> {
    node.get(name)
        .and_then(|v| v.as_string())
        .map(str::to_owned)
}

/// The targets of `event` in the `alerts` section's text (`alerts from=… { … }`); empty
/// when the section names none or does not parse.
pub fn targets(section: &str, event: &Event) -> Targets {
    let Ok(doc) = section.parse::<KdlDocument>() else {
        return Targets::default();
    };
    let Some(alerts) = doc.nodes().iter().find(|n| n.name().value() == "alerts") else {
        return Targets::default();
    };
    let mut t = Targets {
        from: string_prop(alerts, "from"),
        ..Targets::default()
    };
    for node in alerts.children().map(|c| c.nodes()).unwrap_or_default() {
        match node.name().value() {
            "smtp-relay" => {
                t.relay = string_arg(node).map(|host| Relay {
                    host,
                    port: node
                        .get("port")
                        .and_then(|v| v.as_integer())
                        .and_then(|p| u16::try_from(p).ok())
                        .unwrap_or(25),
                    tls: string_prop(node, "tls").unwrap_or_else(|| "starttls".into()),
                    user: string_prop(node, "user"),
                    password: string_prop(node, "password"),
                })
            }
            "recipient" if takes(node, event) => t.emails.extend(string_arg(node)),
            "webhook" if takes(node, event) => {
                let format = match string_prop(node, "format").as_deref() {
                    Some("slack") => WebhookFormat::Slack,
                    _ => WebhookFormat::Json,
                };
                t.webhooks.extend(string_arg(node).map(|url| (url, format)));
            }
            _ => {}
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> Event {
        Event {
            kind: "peer-lost",
            class: "clustering",
            severity: Severity::Critical,
            machine: "lab3.example.com".into(),
            reported_by: "lab1.example.com".into(),
            at_ms: 0,
            summary: "lab3.example.com cannot be reached".into(),
        }
    }

    #[test]
    fn recipients_and_webhooks_take_the_classes_and_severities_they_list() {
        let section = r#"alerts from="strata@example.com" {
            smtp-relay "mail.example.com" port=587 user="strata" password="s3cret"
            recipient "ops@example.com" { class "all" "critical" "warning"; }
            recipient "team@example.com" { class "clustering"; }
            recipient "hw@example.com" { class "hardware"; }
            recipient "info@example.com" { class "clustering" "info"; }
            webhook "https://hooks.example.com/a" format="slack" { class "clustering" "critical"; }
            webhook "https://hooks.example.com/b" { class "system"; }
        }"#;
        let t = targets(section, &lost());
        assert_eq!(t.from.as_deref(), Some("strata@example.com"));
        assert_eq!(t.emails, ["ops@example.com", "team@example.com"]);
        assert_eq!(
            t.webhooks,
            [(
                "https://hooks.example.com/a".to_owned(),
                WebhookFormat::Slack
            )]
        );
        let relay = t.relay.unwrap();
        assert_eq!(
            (relay.host.as_str(), relay.port, relay.tls.as_str()),
            ("mail.example.com", 587, "starttls")
        );
        assert_eq!(relay.password.as_deref(), Some("s3cret"));
        let recovered = Event {
            kind: "peer-recovered",
            severity: Severity::Info,
            ..lost()
        };
        assert_eq!(
            targets(section, &recovered).emails,
            ["team@example.com", "info@example.com"]
        );
        assert!(targets("alerts", &lost()).is_empty());
        assert!(targets("not { kdl", &lost()).is_empty());
    }

    #[test]
    fn what_people_read() {
        let e = lost();
        assert_eq!(
            e.subject(),
            "[strata] critical: lab3.example.com cannot be reached"
        );
        insta::assert_snapshot!(e.text("2026-12-06 11:00:00 UTC"), @r"
        lab3.example.com cannot be reached

        alert:       peer-lost (class clustering, severity critical)
        machine:     lab3.example.com
        reported by: lab1.example.com
        at:          2026-12-06 11:00:00 UTC
        ");
        insta::assert_snapshot!(e.webhook_body(WebhookFormat::Json, "2026-12-06 11:00:00 UTC").to_string(), @r#"{"alert":"peer-lost","class":"clustering","severity":"critical","machine":"lab3.example.com","reported_by":"lab1.example.com","at":"2026-12-06 11:00:00 UTC","summary":"lab3.example.com cannot be reached"}"#);
    }
}
