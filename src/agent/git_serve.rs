//! The config repo served over the agent's own SSH port: `git push
//! ssh://ops@lab1.example.com:2222/config main`, and `git fetch` / `git clone` of the same
//! URL. The agent keeps a bare repository in its state dir (`config.git`) and runs the
//! real `git receive-pack` / `git upload-pack` on it, the SSH channel joined to the
//! process's standard streams.
//!
//! Who may do what follows the roles of plan and apply: operators and administrators
//! push, any user fetches, machine logins (peers, joiners) do neither. A push to the
//! deployed branch (`main`) goes through the repository's `pre-receive` hook, which is
//! `strata git-hook pre-receive` ([`crate::cli`]): it validates the pushed commit with the
//! repo's own schemas, plans it against the live cluster and applies it as one change
//! set stamped with the commit — or refuses the push, printing why (as `remote:` lines on
//! the pusher's terminal), and then nothing changes.
//!
//! Every member's repository is kept at the commit the cluster runs, whichever member
//! it was pushed to or applied through ([`super::mesh::git_fetch`]): a clone from any
//! member returns it, and a push based on it is a fast-forward on any member.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Agent;
use crate::cluster::Authed;
use crate::cluster::auth::Principal;

/// The branch whose pushes are applied to the cluster.
pub const DEPLOYED_BRANCH: &str = "main";

/// The repository's name in URLs (`…:2222/config`).
const REPO_NAME: &str = "config";

/// Which git service a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `git-receive-pack`: a push.
    Receive,
    /// `git-upload-pack`: a fetch or clone.
    Upload,
}

impl Service {
    fn program(self) -> &'static str {
        match self {
            Service::Receive => "receive-pack",
            Service::Upload => "upload-pack",
        }
    }
}

/// Reads an exec command as git's client sends it: `git-receive-pack '/config'` (or
/// `git receive-pack`, with or without quotes, `config.git`, `~/config`). `None`: not a
/// git command. `Some(Err)`: a git command for a repository this agent does not serve.
pub fn parse(command: &str) -> Option<Result<Service, String>> {
    let rest = command.trim();
    let (service, path) = [
        ("git-receive-pack ", Service::Receive),
        ("git receive-pack ", Service::Receive),
        ("git-upload-pack ", Service::Upload),
        ("git upload-pack ", Service::Upload),
    ]
    .iter()
    .find_map(|(prefix, s)| rest.strip_prefix(prefix).map(|p| (*s, p)))?;
    let path = path.trim().trim_matches(|c| c == '\'' || c == '"');
    let name = path
        .trim_start_matches("~/")
        .trim_start_matches('/')
        .trim_end_matches('/');
    let name = name.strip_suffix(".git").unwrap_or(name);
    if name == REPO_NAME {
        Some(Ok(service))
    } else {
        Some(Err(format!(
            "this agent serves one repository, `{REPO_NAME}` (ssh://HOST:PORT/{REPO_NAME}), not `{path}`"
        )))
    }
}

/// Whether `who` may use `service`.
pub fn allowed(who: &Authed, service: Service) -> Result<(), String> {
    if who.principal != Principal::User {
        return Err("a machine login cannot push or fetch the config repo".into());
    }
    match service {
        Service::Upload => Ok(()),
        Service::Receive if who.role.may_apply() => Ok(()),
        Service::Receive => Err(format!(
            "user `{}` ({}) may fetch the config repo but not push to it",
            who.user,
            who.role.as_str()
        )),
    }
}

/// The bare repository's directory in the state dir.
pub const REPO_DIR: &str = "config.git";

/// Where the bare repository is (it may not exist yet).
pub fn path(agent: &Agent) -> PathBuf {
    agent.state.layout.dir.join(REPO_DIR)
}

/// The bare repository, created on first use with its `pre-receive` hook.
pub fn repository(agent: &Agent) -> Result<PathBuf, String> {
    let dir = path(agent);
    if !dir.join("HEAD").exists() {
        let out = std::process::Command::new("git")
            .args(["init", "--bare", "--quiet"])
            .arg(format!("--initial-branch={DEPLOYED_BRANCH}"))
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git init failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    install_hook(&dir)?;
    // `git push -o confirm-within=5m` (commit confirmed) reaches the hook.
    let repo = git2::Repository::open_bare(&dir).map_err(|e| e.to_string())?;
    let mut config = repo.config().map_err(|e| e.to_string())?;
    if config.get_bool("receive.advertisePushOptions").ok() != Some(true) {
        config
            .set_bool("receive.advertisePushOptions", true)
            .map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

/// Writes `hooks/pre-receive`: this very binary, as `strata git-hook pre-receive`.
fn install_hook(dir: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the strata binary: {e}"))?;
    let quoted = exe.display().to_string().replace('\'', r"'\''");
    let script = format!("#!/bin/sh\nexec '{quoted}' git-hook pre-receive\n");
    let path = dir.join("hooks").join("pre-receive");
    if std::fs::read_to_string(&path).ok().as_deref() == Some(script.as_str()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("hooks")).map_err(|e| e.to_string())?;
    super::state_dir::write_atomic(&path, script.as_bytes(), true).map_err(|e| e.to_string())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs `service` on the repository with the channel as its standard streams; its
/// standard error goes to the client's (git shows a hook's as `remote:` lines). Ends
/// the channel with the process's exit status.
pub async fn serve(
    agent: Arc<Agent>,
    who: Authed,
    service: Service,
    channel: Channel<Msg>,
    handle: Handle,
) {
    let id = channel.id();
    let dir = match repository(&agent) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("config repo: {e}");
            finish(&handle, id, &format!("strata agent: {e}\n"), 1).await;
            return;
        }
    };
    let spawned = tokio::process::Command::new("git")
        .arg(service.program())
        .arg(&dir)
        .env("STRATA_STATE_DIR", &agent.state.layout.dir)
        .env("STRATA_PUSH_USER", &who.user)
        .env("STRATA_PUSH_ROLE", who.role.as_str())
        .env("STRATA_DEPLOYED_BRANCH", DEPLOYED_BRANCH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            finish(
                &handle,
                id,
                &format!("strata agent: cannot run git: {e}\n"),
                1,
            )
            .await;
            return;
        }
    };
    tracing::info!(user = %who.user, service = service.program(), "config repo");
    // While a push is received, the branch is receive-pack's to move (`git_fetch`).
    let _receiving = (service == Service::Receive).then(|| agent.git.receiving());
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        finish(
            &handle,
            id,
            "strata agent: git has no standard streams\n",
            1,
        )
        .await;
        return;
    };
    // Separate tasks read and write the channel (see `crate::protocol::connection`); all
    // that is written — output, errors, exit status, end — goes through the one write
    // half, in order, so the end never overtakes the last of git's output.
    let (mut read, write) = channel.split();
    let write = Arc::new(write);
    let input = tokio::spawn(async move {
        while let Some(msg) = read.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } if stdin.write_all(&data).await.is_err() => break,
                russh::ChannelMsg::Eof | russh::ChannelMsg::Close => break,
                _ => {}
            }
        }
        let _ = stdin.shutdown().await;
    });
    let output = {
        let write = write.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write
                            .data_bytes(bytes::Bytes::copy_from_slice(&buf[..n]))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        })
    };
    let errors = {
        let write = write.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                match stderr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write
                            .extended_data_bytes(1, bytes::Bytes::copy_from_slice(&buf[..n]))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        })
    };
    let status = child.wait().await;
    let _ = output.await;
    let _ = errors.await;
    input.abort();
    let code = status.ok().and_then(|s| s.code()).unwrap_or(1);
    let _ = write.exit_status(code as u32).await;
    let _ = write.eof().await;
    let _ = write.close().await;
}

/// Refuses on the channel: `text` on standard error, then `status`.
pub async fn finish(handle: &Handle, id: ChannelId, text: &str, status: u32) {
    let _ = handle
        .extended_data(id, 1, bytes::Bytes::copy_from_slice(text.as_bytes()))
        .await;
    let _ = handle.exit_status_request(id, status).await;
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::users::Role;

    #[test]
    fn git_commands_are_read_as_git_sends_them() {
        assert_eq!(
            parse("git-receive-pack '/config'"),
            Some(Ok(Service::Receive))
        );
        assert_eq!(
            parse("git-upload-pack 'config.git'"),
            Some(Ok(Service::Upload))
        );
        assert_eq!(
            parse("git upload-pack '~/config/'"),
            Some(Ok(Service::Upload))
        );
        assert!(
            parse("git-receive-pack '/etc'")
                .unwrap()
                .unwrap_err()
                .contains("`config`")
        );
        assert_eq!(parse("whoami"), None);
    }

    #[test]
    fn operators_push_and_everyone_fetches() {
        let ro = Authed::user("eve", Role::ReadOnly);
        assert!(allowed(&ro, Service::Upload).is_ok());
        assert!(
            allowed(&ro, Service::Receive)
                .unwrap_err()
                .contains("not push")
        );
        assert!(allowed(&Authed::user("ops", Role::Operator), Service::Receive).is_ok());
        let peer = Authed {
            principal: Principal::Peer(crate::model::MachineName::new("lab2").unwrap()),
            ..Authed::user("strata-peer", Role::ReadOnly)
        };
        assert!(allowed(&peer, Service::Upload).is_err());
    }
}
