//! `git push` (and clone) to an agent's own SSH port with the real git and OpenSSH
//! clients, as an operator does it: a user's key, a known_hosts file pinning the agent's
//! host key, `GIT_SSH_COMMAND`, `ssh://USER@IP:PORT/config`. Not part of the library:
//! included with `#[path]` by the integration tests (`tests/it/git_push.rs`) and the push
//! benchmark, which also include `tests/it/agent_support.rs` and `tests/it/mesh_support.rs`.

#![allow(dead_code)] // the bench only pushes

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::agent_support::TestAgent;
use crate::mesh_support::MeshHarness;

/// One user's way to one agent's config repository.
pub struct Pusher {
    /// Where clones go (and the known_hosts file lives).
    pub dir: PathBuf,
    /// `GIT_SSH_COMMAND`: the user's key, the agent's host key pinned, no prompts.
    pub ssh: String,
    /// `ssh://USER@IP:PORT/config`.
    pub url: String,
}

impl Pusher {
    /// A pusher to `agent`, logging in as `user` with `key`; files in `tmp`.
    pub fn new(agent: &TestAgent, tmp: &Path, user: &str, key: &Path) -> Pusher {
        Pusher::to(&agent.addr, &agent.host_public_key(), tmp, user, key)
    }

    /// A pusher to machine `i` of `h` (its agent directly, not its relay), logging in as
    /// `user` with `key`; files in `tmp`.
    pub fn to_machine(h: &MeshHarness, i: usize, tmp: &Path, user: &str, key: &Path) -> Pusher {
        let m = h.machine(i);
        Pusher::to(
            &m.agent_addr().to_string(),
            &m.host_public_key(),
            tmp,
            user,
            key,
        )
    }

    /// A pusher to machine `i` of `h`, as the machine's local administrator.
    pub fn admin_of(h: &MeshHarness, i: usize, tmp: &Path) -> Pusher {
        Pusher::to_machine(h, i, tmp, "admin", &h.machine(i).local_key())
    }

    /// A pusher to the agent listening on `addr` (`IP:PORT`) with host key `host_key`,
    /// logging in as `user` with `key`.
    pub fn to(addr: &str, host_key: &str, tmp: &Path, user: &str, key: &Path) -> Pusher {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        let kh = tmp.join(format!("known_hosts_{user}_{ip}"));
        std::fs::write(&kh, format!("[{ip}]:{port} {host_key}\n")).unwrap();
        Pusher {
            dir: tmp.to_path_buf(),
            ssh: format!(
                "ssh -F /dev/null -i {} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
                 -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes",
                key.display(),
                kh.display()
            ),
            url: format!("ssh://{user}@{ip}:{port}/config"),
        }
    }

    /// Runs `git ARGS` in `repo` with this pusher's ssh.
    pub fn git(&self, repo: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .current_dir(repo)
            .args(args)
            .env("GIT_SSH_COMMAND", &self.ssh)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .unwrap()
    }

    /// `git push URL main` from `repo`.
    pub fn push(&self, repo: &Path) -> Output {
        self.git(repo, &["push", &self.url, "main"])
    }

    /// `git clone URL NAME` into [`Pusher::dir`].
    pub fn clone_to(&self, name: &str) -> Output {
        Command::new("git")
            .current_dir(&self.dir)
            .args(["clone", &self.url, name])
            .env("GIT_SSH_COMMAND", &self.ssh)
            .output()
            .unwrap()
    }
}
