//! `strata secret …`: the cluster's recipients, encrypting a value to them, rotating and
//! retiring the cluster's identity, and re-encrypting a repo's secrets in place. Clear
//! values are read here only from the operator (`encrypt`) or from a repo that still
//! holds them (`reencrypt` while migrating); the agent decrypts, never this side.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::agent_args::TargetArgs;
use super::args::Format;
use super::connect::{Client, connect, unexpected};
use super::json::{EncryptJson, RecipientsJson, ReencryptJson, RotateJson, SiteJson};
use super::output::Output;
use super::{CliError, Failure, Outcome};
use crate::atomic_file::{self, FileMode};
use crate::protocol::{RecipientInfo, Request, Response};
use crate::secret::{self, sites::Site};

/// `strata secret`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    pub command: SecretCommand,
}

/// The `strata secret` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print the cluster's recipients (age X25519 public keys), the current one first:
    /// what `encrypt` encrypts to, and what CI may encrypt to offline.
    #[command(after_long_help = "Examples:\n  \
        strata secret recipient --target lab1.example.com\n  \
        strata secret recipient --state-dir /var/lib/strata --format json")]
    Recipient {
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Encrypt a value (read from standard input, or asked on the terminal with echo
    /// off) to the cluster's current recipient and every --recipient, and print it as age
    /// armoured text to paste into a repo, such as after `bind-password=`.
    ///
    /// With --target or --state-dir the cluster's recipient is asked of an agent;
    /// without them, --recipient alone encrypts offline (CI, a break-glass key).
    #[command(after_long_help = "Examples:\n  \
        strata secret encrypt --target lab1.example.com --kdl   # asks for the value\n  \
        printf %s \"$LDAP_PASS\" | strata secret encrypt --recipient age1…   # offline, in CI\n  \
        # then, in cluster.kdl:\n  \
        # profile \"corp\" bind-password=\"\"\"\n  \
        #     -----BEGIN AGE ENCRYPTED FILE-----\n  \
        #     …\n  \
        #     -----END AGE ENCRYPTED FILE-----\n  \
        #     \"\"\"")]
    Encrypt {
        #[command(flatten)]
        target: TargetArgs,
        /// Also encrypt to this age recipient (`age1…`); repeatable. Alone (no
        /// --target, no --state-dir), encrypts offline to these only.
        #[arg(long, value_name = "AGE1…")]
        recipient: Vec<String>,
        /// Print a KDL multi-line string (`"""` … `"""`) ready to paste after `NAME=`.
        #[arg(long)]
        kdl: bool,
    },
    /// Make a new identity for the cluster, the current one from now on. Nothing in git
    /// is re-encrypted: the secrets to re-encrypt are listed (with --repo), and the old
    /// identity keeps decrypting them until `strata secret retire`.
    #[command(after_long_help = "Example:\n  \
        strata secret rotate --target lab1.example.com --repo .\n  \
        strata secret reencrypt --target lab1.example.com --repo .\n  \
        git commit -am 'secrets: re-encrypted' && strata apply --repo . --target lab1.example.com --yes\n  \
        strata secret retire --target lab1.example.com --repo .")]
    Rotate {
        #[command(flatten)]
        target: TargetArgs,
        /// The config repo whose secrets to list for re-encryption.
        #[arg(long, value_name = "DIR", value_parser = super::args::absolute_path())]
        repo: Option<PathBuf>,
    },
    /// Remove every identity of the cluster but the current one. Refused while the
    /// cluster runs a secret, or --repo holds one, that only an older identity decrypts:
    /// each is named, file and line for the repo's.
    #[command(after_long_help = "Example:\n  \
        strata secret retire --target lab1.example.com --repo .")]
    Retire {
        #[command(flatten)]
        target: TargetArgs,
        /// The config repo whose secrets must decrypt with the current identity alone.
        #[arg(long, value_name = "DIR", value_parser = super::args::absolute_path())]
        repo: Option<PathBuf>,
    },
    /// Re-encrypt every secret of a repo to the cluster's current recipient (and every
    /// --recipient), in place: only the values change, comments and layout stay. A
    /// secret still in clear text is encrypted too (migrating a repo). The agent
    /// decrypts; no clear value leaves it.
    #[command(after_long_help = "Examples:\n  \
        strata secret reencrypt --target lab1.example.com --repo .\n  \
        strata secret reencrypt --repo . --recipient age1…   # offline: clear secrets only")]
    Reencrypt {
        #[command(flatten)]
        target: TargetArgs,
        /// The config repo.
        #[arg(long, default_value = ".", value_name = "DIR", value_parser = super::args::absolute_path())]
        repo: PathBuf,
        /// Also encrypt to this age recipient (`age1…`), a break-glass key; repeatable.
        #[arg(long, value_name = "AGE1…")]
        recipient: Vec<String>,
    },
}

/// Runs `strata secret`.
pub fn run(args: SecretArgs, out: &Output) -> Result<Outcome, CliError> {
    match args.command {
        SecretCommand::Recipient { target } => {
            let mut client = connect(&target)?;
            let list = recipients(&mut client)?;
            match out.format {
                Format::Json => out.json(&RecipientsJson {
                    machine: client.machine.clone(),
                    recipients: list.clone(),
                }),
                _ => out.print(&recipient_lines(&list)),
            }
            Ok(Outcome::Ok)
        }
        SecretCommand::Encrypt {
            target,
            recipient,
            kdl,
        } => encrypt(&target, &recipient, kdl, out),
        SecretCommand::Rotate { target, repo } => rotate(&target, repo.as_deref(), out),
        SecretCommand::Retire { target, repo } => retire(&target, repo.as_deref(), out),
        SecretCommand::Reencrypt {
            target,
            repo,
            recipient,
        } => reencrypt(&target, &repo, &recipient, out),
    }
}

fn recipients(client: &mut Client) -> Result<Vec<RecipientInfo>, CliError> {
    match client.request(Request::SecretRecipients)? {
        Response::SecretRecipients { recipients } => Ok(recipients),
        other => Err(unexpected(other)),
    }
}

fn recipient_lines(list: &[RecipientInfo]) -> String {
    list.iter()
        .map(|r| {
            let what = if r.current {
                "current"
            } else {
                "older, until retired"
            };
            format!("{}  # @identity:{}, {what}\n", r.recipient, r.id)
        })
        .collect()
}

fn has_target(target: &TargetArgs) -> bool {
    target.target.is_some() || target.state_dir.is_some()
}

/// The recipients to encrypt to: the cluster's current one (when an agent is named) and
/// `extra`.
fn encryption_recipients(
    target: &TargetArgs,
    extra: &[String],
) -> Result<Vec<age::x25519::Recipient>, CliError> {
    let mut all = Vec::new();
    if has_target(target) {
        let mut client = connect(target)?;
        if let Some(current) = recipients(&mut client)?.into_iter().find(|r| r.current) {
            all.push(current.recipient);
        }
    } else if extra.is_empty() {
        return Err(Failure::new(
            "no recipient to encrypt to",
            "name an agent (--target HOST or --state-dir DIR) for the cluster's recipient, or give --recipient age1…",
        ));
    }
    all.extend(extra.iter().cloned());
    secret::parse_recipients(&all).map_err(|e| {
        Failure::new(
            e.to_string(),
            "give age X25519 recipients, as `strata secret recipient` prints them",
        )
    })
}

fn encrypt(
    target: &TargetArgs,
    extra: &[String],
    kdl: bool,
    out: &Output,
) -> Result<Outcome, CliError> {
    let recipients = encryption_recipients(target, extra)?;
    let clear = read_value()?;
    let text = secret::encrypt(&clear, &recipients)
        .map_err(|e| Failure::new(e.to_string(), "check the recipients"))?;
    // Printed as it is: the one output whose armoured text is the point (every other
    // goes through `Output`, which masks it).
    let printed = match out.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string(&EncryptJson {
                encrypted: text,
                recipients: recipients.len(),
            })
            .expect("serializable")
        ),
        _ if kdl => format!("{}\n", secret::kdl_multiline(&text, "")),
        _ => text,
    };
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(printed.as_bytes());
    let _ = stdout.flush();
    Ok(Outcome::Ok)
}

/// The value to encrypt: asked twice on a terminal (echo off), else all of standard
/// input less one trailing newline.
fn read_value() -> Result<String, CliError> {
    let empty = || Failure::new("the value to encrypt is empty", "type it, or pipe it in");
    if super::tty::attended() {
        let ask = |p: &str| {
            super::tty::ask(p, false)
                .map_err(|e| Failure::new(format!("cannot read the value: {e}"), "pipe it in"))
        };
        let first = ask("Value to encrypt: ")?;
        if first.is_empty() {
            return Err(empty());
        }
        if ask("Again: ")? != first {
            return Err(Failure::new(
                "the two values differ",
                "type the same value twice",
            ));
        }
        return Ok(first);
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        Failure::new(
            format!("cannot read standard input: {e}"),
            "pipe in UTF-8 text",
        )
    })?;
    let value = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(empty());
    }
    Ok(value.to_owned())
}

/// The secrets of the repo at `dir` (which must validate, clear secrets aside).
fn repo_sites(dir: &Path) -> Result<Vec<Site>, CliError> {
    let mut checked =
        crate::validate::check_paths(&[dir.to_path_buf()]).map_err(CliError::invalid)?;
    secret::allow_plaintext(&mut checked.diags);
    if checked.diags.has_errors() {
        return Err(Failure::new(
            format!(
                "{} is not a valid config repo ({})",
                dir.display(),
                crate::text::count(checked.diags.error_count(), "error")
            ),
            "fix the problems `strata validate` reports first",
        ));
    }
    Ok(secret::sites::find(&checked.repo, &checked.catalogue))
}

fn site_lines(sites: &[&Site]) -> String {
    sites
        .iter()
        .map(|s| format!("  {}  {}\n", s.location(), s.path))
        .collect()
}

fn rotate(target: &TargetArgs, repo: Option<&Path>, out: &Output) -> Result<Outcome, CliError> {
    let sites = repo.map(repo_sites).transpose()?.unwrap_or_default();
    let mut client = connect(target)?;
    match client.request(Request::SecretRotate)? {
        Response::Applied { .. } => {}
        other => return Err(unexpected(other)),
    }
    let list = recipients(&mut client)?;
    let listed: Vec<&Site> = sites.iter().collect();
    match out.format {
        Format::Json => out.json(&RotateJson {
            machine: client.machine.to_string(),
            recipients: list,
            reencrypt: listed
                .iter()
                .map(|s| SiteJson {
                    file: s.file.name.clone(),
                    line: s.line,
                    path: s.path.clone(),
                })
                .collect(),
        }),
        _ => {
            let mut text = format!(
                "new identity: {}\nolder identities decrypt until `strata secret retire`\n",
                list.first().map_or("", |r| r.recipient.as_str())
            );
            match repo {
                Some(dir) if listed.is_empty() => {
                    text.push_str(&format!("{} holds no secret\n", dir.display()))
                }
                Some(dir) => text.push_str(&format!(
                    "to re-encrypt ({}):\n{}then: strata secret reencrypt --repo {}\n",
                    crate::text::count(listed.len(), "secret"),
                    site_lines(&listed),
                    dir.display()
                )),
                None => text.push_str(
                    "re-encrypt the repo's secrets: strata secret reencrypt --repo DIR\n",
                ),
            }
            out.print(&text)
        }
    }
    Ok(Outcome::Ok)
}

/// The repo secrets (encrypted ones) the agent cannot decrypt, with its current identity
/// alone when `current_only`.
pub(super) fn undecryptable<'s>(
    client: &mut Client,
    sites: &'s [Site],
    current_only: bool,
) -> Result<Vec<&'s Site>, CliError> {
    let encrypted: Vec<&Site> = sites.iter().filter(|s| s.encrypted()).collect();
    if encrypted.is_empty() {
        return Ok(Vec::new());
    }
    let texts = encrypted.iter().map(|s| s.value.clone()).collect();
    match client.request(Request::SecretCheck {
        texts,
        current_only,
    })? {
        Response::SecretChecked { undecryptable } => Ok(undecryptable
            .into_iter()
            .filter_map(|i| encrypted.get(i).copied())
            .collect()),
        other => Err(unexpected(other)),
    }
}

/// The refusal for secrets the cluster cannot decrypt: `headline` (which may say `{n}`,
/// "N secrets"), then each, file and line.
pub(super) fn stuck_failure(stuck: &[&Site], headline: &str) -> CliError {
    Failure::new(
        format!(
            "{}:\n{}",
            headline.replace("{n}", &crate::text::count(stuck.len(), "secret")),
            site_lines(stuck).trim_end()
        ),
        "re-encrypt them to the cluster's current recipient (`strata secret reencrypt --repo DIR`, \
         while the identity they were encrypted to is not retired; else encrypt the clear \
         value again with `strata secret encrypt`)",
    )
}

fn retire(target: &TargetArgs, repo: Option<&Path>, out: &Output) -> Result<Outcome, CliError> {
    let sites = repo.map(repo_sites).transpose()?.unwrap_or_default();
    let mut client = connect(target)?;
    let stuck = undecryptable(&mut client, &sites, true)?;
    if !stuck.is_empty() {
        return Err(stuck_failure(
            &stuck,
            "nothing was retired: only an identity to retire decrypts {n} of the repo",
        ));
    }
    match client.request(Request::SecretRetire)? {
        Response::Applied { .. } | Response::Unchanged => {}
        other => return Err(unexpected(other)),
    }
    let list = recipients(&mut client)?;
    match out.format {
        Format::Json => out.json(&RecipientsJson {
            machine: client.machine.clone(),
            recipients: list.clone(),
        }),
        _ => out.print(&format!(
            "older identities retired; the cluster decrypts with:\n{}",
            recipient_lines(&list)
        )),
    }
    Ok(Outcome::Ok)
}

fn reencrypt(
    target: &TargetArgs,
    dir: &Path,
    extra: &[String],
    out: &Output,
) -> Result<Outcome, CliError> {
    let sites = repo_sites(dir)?;
    let mut client = if has_target(target) {
        Some(connect(target)?)
    } else {
        None
    };
    let encrypted: Vec<&Site> = sites.iter().filter(|s| s.encrypted()).collect();
    let mut new_texts: Vec<(&Site, String)> = Vec::new();
    if !encrypted.is_empty() {
        let Some(client) = client.as_mut() else {
            return Err(Failure::new(
                format!(
                    "{} to re-encrypt, and no agent to decrypt them",
                    crate::text::count(encrypted.len(), "encrypted secret")
                ),
                "name an agent (--target HOST or --state-dir DIR): only members decrypt",
            ));
        };
        let texts = encrypted.iter().map(|s| s.value.clone()).collect();
        match client.request(Request::SecretReencrypt {
            texts,
            also: extra.to_vec(),
        })? {
            Response::SecretReencrypted { texts } => {
                let mut stuck = Vec::new();
                for (site, result) in encrypted.iter().zip(texts) {
                    match result {
                        Ok(t) => new_texts.push((site, t)),
                        Err(_) => stuck.push(*site),
                    }
                }
                if !stuck.is_empty() {
                    return Err(stuck_failure(
                        &stuck,
                        "nothing was written: no identity of the cluster decrypts {n}",
                    ));
                }
            }
            other => return Err(unexpected(other)),
        }
    }
    let clear: Vec<&Site> = sites.iter().filter(|s| !s.encrypted()).collect();
    if !clear.is_empty() {
        let recipients = match client.as_mut() {
            Some(c) => {
                let mut all: Vec<String> = recipients(c)?
                    .into_iter()
                    .filter(|r| r.current)
                    .map(|r| r.recipient)
                    .collect();
                all.extend(extra.iter().cloned());
                secret::parse_recipients(&all)
                    .map_err(|e| Failure::new(e.to_string(), "give age1… recipients"))?
            }
            None => encryption_recipients(target, extra)?,
        };
        for site in clear {
            let t = secret::encrypt(&site.value, &recipients)
                .map_err(|e| Failure::new(e.to_string(), "check the recipients"))?;
            new_texts.push((site, t));
        }
    }
    let files = write_in_place(dir, &new_texts)?;
    match out.format {
        Format::Json => out.json(&ReencryptJson {
            reencrypted: new_texts.len(),
            files,
        }),
        _ => out.print(&format!(
            "re-encrypted {} in {}\n",
            crate::text::count(new_texts.len(), "secret"),
            crate::text::count(files.len(), "file")
        )),
    }
    Ok(Outcome::Ok)
}

/// Writes each site's new armoured text in place ([`secret::sites::rewrite`]), file by
/// file, each atomically with its mode kept. Returns the files written.
fn write_in_place(dir: &Path, texts: &[(&Site, String)]) -> Result<Vec<String>, CliError> {
    let mut written = Vec::new();
    for (name, text) in secret::sites::rewrite(texts) {
        let path = dir.join(&name);
        atomic_file::write(&path, text.as_bytes(), FileMode::Keep).map_err(|e| {
            Failure::new(
                format!("cannot write {}: {}", path.display(), e.source),
                "check the repo's permissions; files written before it are re-encrypted",
            )
        })?;
        written.push(name);
    }
    Ok(written)
}
