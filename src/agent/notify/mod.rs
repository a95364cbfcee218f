//! Notifications: alerts delivered by email through the SMTP relay the cluster's `alerts`
//! section names (lettre) and by webhook (a JSON POST, or Slack's `{"text": …}`; ureq),
//! to the recipients and webhooks whose classes and severities take them
//! ([`targets`]). The section is read from this machine's running config when an alert
//! is sent, so a change to it applies to the next alert.
//!
//! Never in the way: [`Notifier::send`] only queues (at most [`QUEUE`] alerts; more are
//! dropped and logged), and one task delivers, retrying each target up to
//! [`RETRIES`] times with a doubling pause, so a dead relay costs neither a commit nor
//! memory. Which member sends an alert about a peer is the mesh's call
//! ([`crate::agent::mesh`]): one per cluster; what change sets tell ([`changes`]: a lost
//! write, a reverted trial, a broken freeze) is sent by the one member it concerns, and
//! a follower's state (out of sync, an apply that failed, self-heal) by the follower.

pub mod changes;
pub mod targets;

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

use targets::Relay;
pub use targets::{Event, Severity};

/// Alerts waiting to be delivered, at most.
pub const QUEUE: usize = 64;

/// Tries per target: the first and this many more.
pub const RETRIES: u32 = 6;

/// The first pause before a retry; it doubles each time (1, 2, 4 … 32 s: about a minute
/// in all).
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// The queue of alerts to deliver.
#[derive(Debug, Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Event>,
    /// The trials whose revert this machine announced ([`changes`]): each once.
    announced: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<crate::model::Version>>>,
}

impl Notifier {
    /// Starts the delivering task; `running` is the running-config directory whose
    /// `alerts.kdl` says where alerts go.
    pub fn start(running: PathBuf, machine: String) -> Notifier {
        let (queue, mut rx) = mpsc::channel::<Event>(QUEUE);
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let section =
                    std::fs::read_to_string(running.join("alerts.kdl")).unwrap_or_default();
                deliver(&event, &targets::targets(&section, &event), &machine).await;
            }
        });
        Notifier {
            queue,
            announced: Default::default(),
        }
    }

    /// Whether the revert of trial `version` is news here (not announced before).
    pub fn first_revert_of(&self, version: &crate::model::Version) -> bool {
        self.announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(version.clone())
    }

    /// Queues `event`; never waits.
    pub fn send(&self, event: Event) {
        if let Err(e) = self.queue.try_send(event) {
            tracing::warn!(
                "alert not sent: {QUEUE} alerts are already waiting to be delivered: {e}"
            );
        }
    }
}

/// Delivers `event` to every target, each retried on its own.
async fn deliver(event: &Event, to: &targets::Targets, machine: &str) {
    if to.is_empty() {
        tracing::debug!(
            alert = event.kind,
            "no recipient or webhook takes this alert"
        );
        return;
    }
    let when = crate::text::utc(event.at_ms);
    let mut sends = Vec::new();
    if !to.emails.is_empty() {
        match &to.relay {
            Some(relay) => {
                let from = to
                    .from
                    .clone()
                    .unwrap_or_else(|| format!("strata@{machine}"));
                let mail = mail(event, &when, &from, &to.emails);
                let relay = relay.clone();
                sends.push(tokio::spawn(async move {
                    let Ok(mail) = mail else {
                        return;
                    };
                    retried("email", &relay.host.clone(), || {
                        send_mail(&relay, mail.clone())
                    })
                    .await;
                }));
            }
            None => tracing::warn!(
                alert = event.kind,
                "alert mail not sent: the alerts section names no smtp-relay"
            ),
        }
    }
    for (url, format) in &to.webhooks {
        let body = event.webhook_body(*format, &when).to_string();
        let url = url.clone();
        sends.push(tokio::spawn(async move {
            retried("webhook", &url.clone(), || post(url.clone(), body.clone())).await;
        }));
    }
    for s in sends {
        let _ = s.await;
    }
}

/// Runs `attempt` until it succeeds, at most [`RETRIES`] more times.
async fn retried<F, Fut>(what: &str, to: &str, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut pause = FIRST_PAUSE;
    for tried in 0..=RETRIES {
        match attempt().await {
            Ok(()) => {
                tracing::info!(to, "alert {what} sent");
                return;
            }
            Err(e) if tried == RETRIES => {
                tracing::error!(to, "alert {what} not sent after {} tries: {e}", RETRIES + 1);
            }
            Err(e) => {
                tracing::warn!(
                    to,
                    "alert {what} not sent, trying again in {} s: {e}",
                    pause.as_secs()
                );
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
}

/// The alert as a mail message.
fn mail(event: &Event, when: &str, from: &str, to: &[String]) -> Result<Message, String> {
    let parse = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("`{a}`: {e}"));
    let mut builder = Message::builder()
        .from(parse(from)?)
        .subject(event.subject());
    for address in to {
        builder = builder.to(parse(address)?);
    }
    builder.body(event.text(when)).map_err(|e| e.to_string())
}

async fn send_mail(relay: &Relay, mail: Message) -> Result<(), String> {
    let builder = match relay.tls.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&relay.host),
        "tls" => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&relay.host).map_err(|e| e.to_string())?
        }
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&relay.host)
            .map_err(|e| e.to_string())?,
    };
    let mut builder = builder
        .port(relay.port)
        .timeout(Some(Duration::from_secs(20)));
    if let (Some(user), Some(pass)) = (&relay.user, &relay.password) {
        builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    builder
        .build()
        .send(mail)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// POSTs `body` (JSON) to `url`, off the runtime (ureq blocks).
async fn post(url: String, body: String) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}
