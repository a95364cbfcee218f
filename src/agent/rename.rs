//! The agent's side of a rename ([`crate::cluster::rename`]): the machine's name lives in
//! `agent.kdl`, and the agent's mesh, logins and logs all carry it, so the agent takes a
//! new name by restarting under it.
//!
//! - While it runs, the node tells it when a change renamed this machine ([`Restart`]);
//!   the agent stops serving as it does on SIGTERM (answers in flight are sent) and
//!   executes itself again, same process and arguments ([`exec_again`]).
//! - At every start, before anything runs, the store is asked whether it knows this
//!   machine's host key under another name ([`take_new_name`]); then `agent.kdl` is
//!   rewritten with it, the rest of the file (comments included) as it was. A crash
//!   anywhere between the rename's merge and the restart is mended here.

use std::sync::atomic::{AtomicBool, Ordering};

use kdl::{KdlDocument, KdlValue};

use super::AgentError;
use super::state_dir::{StateDir, write_atomic};
use crate::model::MachineName;
use crate::state::Store;

/// Whether the agent is to restart (it was renamed), and the wake-up of whoever waits.
#[derive(Debug, Default)]
pub struct Restart {
    asked: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Restart {
    /// Asks for the restart.
    pub fn ask(&self) {
        self.asked.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Whether a restart was asked for.
    pub fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// Completes once a restart is asked for.
    pub async fn wait(&self) {
        while !self.asked() {
            self.notify.notified().await;
        }
    }
}

/// Renames this machine in `agent.kdl` (and in `state`) if the store knows its host key
/// under another name; returns the new name.
pub fn take_new_name(
    state: &mut StateDir,
    store: &impl Store,
) -> Result<Option<MachineName>, AgentError> {
    let Ok(old) = MachineName::new(&state.settings.machine) else {
        return Ok(None);
    };
    let machines = store.live_under(&["@machine:".into()])?;
    let Some(new) =
        crate::cluster::rename::renamed_to(&machines, &old, state.host_key.public_key())
    else {
        return Ok(None);
    };
    let path = state.layout.settings();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| AgentError::Bootstrap(format!("cannot read {}: {e}", path.display())))?;
    let renamed = with_machine(&text, new.as_str()).map_err(|e| {
        AgentError::Bootstrap(format!(
            "this machine was renamed {new}, but {} cannot be rewritten: {e}",
            path.display()
        ))
    })?;
    write_atomic(&path, renamed.as_bytes(), true)?;
    state.settings.machine = new.to_string();
    tracing::warn!(was = %old, now = %new, "this machine was renamed: agent.kdl now names it {new}");
    Ok(Some(new))
}

/// `text` (an `agent.kdl`) naming the machine `name`, everything else as it was.
fn with_machine(text: &str, name: &str) -> Result<String, String> {
    debug_assert!(MachineName::new(name).is_ok());
    let mut doc: KdlDocument = text.parse().map_err(|_| "it is not valid KDL".to_owned())?;
    let entry = doc
        .nodes_mut()
        .iter_mut()
        .find(|n| n.name().value() == "machine")
        .and_then(|n| n.entries_mut().iter_mut().find(|e| e.name().is_none()))
        .ok_or("it has no `machine \"NAME\"`")?;
    if let Some(format) = entry.format_mut() {
        // Quoted, as the agent writes it (a machine name needs no escapes).
        format.value_repr = format!("\"{name}\"");
    }
    entry.set_value(KdlValue::String(name.to_owned()));
    Ok(doc.to_string())
}

/// Replaces this process with a new run of the same program and arguments (the agent,
/// restarting under its new name). Returns only if that fails.
#[cfg(unix)]
pub fn exec_again() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    // /proc/self/exe is this very binary even if a package upgrade replaced the file.
    let program = if std::path::Path::new("/proc/self/exe").exists() {
        std::path::PathBuf::from("/proc/self/exe")
    } else {
        match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => return e,
        }
    };
    std::process::Command::new(program)
        .arg0(arg0)
        .args(args)
        .exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_changes_and_nothing_else() {
        let text = "// This machine's name in the cluster.\nmachine \"lab2\" // was lab2\nlisten \"127.0.0.1:2222\"\n";
        assert_eq!(
            with_machine(text, "lab9.example.com").unwrap(),
            "// This machine's name in the cluster.\nmachine \"lab9.example.com\" // was lab2\nlisten \"127.0.0.1:2222\"\n"
        );
        assert!(with_machine("listen \"x\"\n", "lab9").is_err());
        assert!(with_machine("machine {", "lab9").is_err());
    }
}
