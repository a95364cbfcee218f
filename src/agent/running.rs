//! Running the result: the machine's effective config written to its running-config
//! directory (one `SECTION.kdl` per section, each written atomically), then the hooks run
//! with the names of the sections that changed, so a real service can be rendered and
//! reloaded from the files.
//!
//! The config comes with its secrets decrypted
//! ([`crate::cluster::applier::running_config`]): the files hold the clear values the
//! service needs.
//!
//! The directory is created 0700 and every file written 0600: `users.kdl` holds
//! passphrase hashes, other files clear secrets, and the rest is the appliance's
//! configuration. Hooks run as the
//! agent's own user (they are its children), so they read the files; a service that runs
//! as another user gets what the hook renders for it, with the permissions that service
//! needs — the running directory itself is never opened to a group.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use super::state_dir::{StateDirError, create_private_dir, sync_dir, write_atomic};
use std::path::PathBuf;

use crate::cluster::applier::{Applier, compare};
use crate::protocol::{HookRun, LocalEdit, RunReport};

/// The running-config directory (one `SECTION.kdl` per section) and the hooks run after
/// a change.
#[derive(Debug, Clone)]
pub struct RunningDir {
    /// Where the files go.
    pub dir: PathBuf,
    /// Commands run with the changed section names as arguments.
    pub hooks: Vec<Vec<String>>,
    /// Where hook runs are counted.
    pub metrics: std::sync::Arc<super::metrics::Metrics>,
    /// Where a failed hook is reported, once the agent runs.
    pub alerts: std::sync::Arc<std::sync::OnceLock<super::notify::Notifier>>,
}

impl RunningDir {
    /// Removes what an interrupted write left in the directory: the atomic writer links
    /// its temporary file as `.NAME.kdl.RANDOM` just before renaming it over `NAME.kdl`,
    /// so a crash (kill -9) in between leaves one. Run at start, before the first run.
    pub fn remove_interrupted_writes(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".kdl.") {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {
                        tracing::info!(file = %name, "removed what an interrupted write left")
                    }
                    Err(e) => {
                        tracing::warn!(file = %name, "cannot remove what an interrupted write left: {e}")
                    }
                }
            }
        }
    }
}

impl Applier for RunningDir {
    fn apply(&self, machine: &str, config: &BTreeMap<String, String>) -> RunReport {
        match update(&self.dir, machine, config, &self.hooks) {
            Ok(report) => {
                for h in &report.hooks {
                    self.metrics.hook(h.ok);
                    if !h.ok {
                        tracing::error!(hook = %h.command, status = %h.status, output = %h.output, "hook failed");
                        if let Some(n) = self.alerts.get() {
                            n.send(super::notify::Event {
                                kind: "hook-failed",
                                class: "clustering",
                                severity: super::notify::Severity::Warning,
                                machine: machine.to_owned(),
                                reported_by: machine.to_owned(),
                                at_ms: crate::state::wall_ms(),
                                summary: format!(
                                    "hook {} failed on {machine}: {}",
                                    h.command, h.status
                                ),
                            });
                        }
                    }
                }
                report
            }
            Err(e) => {
                tracing::error!("cannot write the running config: {e}");
                RunReport {
                    machine: machine.to_owned(),
                    hooks: vec![HookRun {
                        command: "write running config".into(),
                        ok: false,
                        status: e.to_string(),
                        output: String::new(),
                    }],
                    ..RunReport::default()
                }
            }
        }
    }

    fn local_edits(&self, config: &BTreeMap<String, String>) -> Vec<LocalEdit> {
        local_edits(&self.dir, config)
    }
}

/// Brings `dir` in line with `config`: writes changed files, removes files of sections
/// that are gone, and runs `hooks` if anything changed. Returns what it did.
pub fn update(
    dir: &Path,
    machine: &str,
    config: &BTreeMap<String, String>,
    hooks: &[Vec<String>],
) -> Result<RunReport, StateDirError> {
    create_private_dir(dir)?;
    let mut report = RunReport {
        machine: machine.to_owned(),
        ..RunReport::default()
    };
    for (section, text) in config {
        let path = dir.join(format!("{section}.kdl"));
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            write_atomic(&path, text.as_bytes(), true)?;
            report.written.push(section.clone());
        } else {
            make_private(&path)?;
        }
    }
    let existing = fs::read_dir(dir).map_err(|source| StateDirError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in existing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            // Left by a write interrupted by a crash: the target file is intact.
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if let Some(section) = name.strip_suffix(".kdl")
            && !name.starts_with('.')
            && !config.contains_key(section)
        {
            let _ = fs::remove_file(entry.path());
            report.removed.push(section.to_owned());
        }
    }
    if !report.removed.is_empty() {
        sync_dir(dir)?;
    }
    let changed: Vec<String> = report
        .written
        .iter()
        .chain(&report.removed)
        .cloned()
        .collect();
    if !changed.is_empty() {
        for hook in hooks {
            report.hooks.push(run_hook(hook, &changed, dir, machine));
        }
    }
    Ok(report)
}

/// The sections of `dir` that differ from `config`: files edited, removed or added since
/// the agent wrote them (for `check`). Temporary files of an interrupted write are not
/// edits; a file that cannot be read counts as removed.
pub fn local_edits(dir: &Path, config: &BTreeMap<String, String>) -> Vec<LocalEdit> {
    let mut found = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(section) = name.strip_suffix(".kdl")
                && !name.starts_with('.')
                && let Ok(text) = fs::read_to_string(entry.path())
            {
                found.insert(section.to_owned(), text);
            }
        }
    }
    compare(config, &found)
}

/// Narrows the mode of a running-config file written before files were made private
/// (0644 then): its content is current, so it is not rewritten and no hook runs for it.
fn make_private(path: &Path) -> Result<(), StateDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| StateDirError::Io {
            path: path.display().to_string(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn run_hook(argv: &[String], changed: &[String], dir: &Path, machine: &str) -> HookRun {
    let command = argv.join(" ");
    let result = Command::new(&argv[0])
        .args(&argv[1..])
        .args(changed)
        .env("STRATA_RUNNING_DIR", dir)
        .env("STRATA_MACHINE", machine)
        .stdin(std::process::Stdio::null())
        .output();
    match result {
        Ok(out) => {
            let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stdout));
            // Keep the tail: the end of a failing script's output says why.
            if output.len() > 4000 {
                let cut = output.len() - 4000;
                let cut = (cut..output.len())
                    .find(|i| output.is_char_boundary(*i))
                    .unwrap_or(cut);
                output = output[cut..].to_owned();
            }
            HookRun {
                command,
                ok: out.status.success(),
                status: out.status.to_string(),
                output: output.trim_end().to_owned(),
            }
        }
        Err(e) => HookRun {
            command,
            ok: false,
            status: format!("cannot start: {e}"),
            output: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_interrupted_write_left_is_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().to_path_buf();
        for name in ["dns.kdl", ".dns.kdl.Xy3kQ9", ".keep"] {
            fs::write(run.join(name), "x").unwrap();
        }
        RunningDir {
            dir: run.clone(),
            hooks: Vec::new(),
            metrics: Default::default(),
            alerts: Default::default(),
        }
        .remove_interrupted_writes();
        let mut left: Vec<String> = fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".keep", "dns.kdl"]);
    }

    #[test]
    fn files_follow_the_config_and_hooks_get_the_changed_sections() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("running");
        let log = dir.path().join("hook.log");
        let hook = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            format!("echo \"$STRATA_MACHINE $*\" >> {}", log.display()),
            "hook".to_owned(),
        ];
        let mut config = BTreeMap::from([
            ("dns".to_owned(), "dns\n".to_owned()),
            ("ntp".to_owned(), "ntp\n".to_owned()),
        ]);
        let r = update(&run, "lab1", &config, std::slice::from_ref(&hook)).unwrap();
        assert_eq!(r.written, ["dns", "ntp"]);
        assert!(r.hooks[0].ok, "{:?}", r.hooks);
        // Nothing changed: no writes, no hooks.
        let r = update(&run, "lab1", &config, std::slice::from_ref(&hook)).unwrap();
        assert!(r.written.is_empty() && r.hooks.is_empty());
        config.remove("ntp");
        config.insert("dns".into(), "dns { server x; }\n".into());
        let r = update(&run, "lab1", &config, &[hook, vec!["false".into()]]).unwrap();
        assert_eq!(
            (r.written.as_slice(), r.removed.as_slice()),
            (&["dns".to_owned()][..], &["ntp".to_owned()][..])
        );
        assert!(!r.hooks[1].ok);
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            "lab1 dns ntp\nlab1 dns ntp\n"
        );
        assert_eq!(
            fs::read_to_string(run.join("dns.kdl")).unwrap(),
            "dns { server x; }\n"
        );
        assert!(!run.join("ntp.kdl").exists());
    }

    #[cfg(unix)]
    #[test]
    fn running_files_are_private_and_old_loose_ones_are_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("running");
        let config = BTreeMap::from([("users".to_owned(), "users\n".to_owned())]);
        update(&run, "lab1", &config, &[]).unwrap();
        assert_eq!(mode(&run), 0o700);
        assert_eq!(mode(&run.join("users.kdl")), 0o600);
        // As an earlier version left it: same content, readable by everyone.
        fs::set_permissions(run.join("users.kdl"), fs::Permissions::from_mode(0o644)).unwrap();
        let r = update(&run, "lab1", &config, &[]).unwrap();
        assert!(r.written.is_empty(), "{r:?}");
        assert_eq!(mode(&run.join("users.kdl")), 0o600);
    }
}
