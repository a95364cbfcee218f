//! Running the result: the machine's effective config written to its running-config
//! directory (one `SECTION.kdl` per section, each written atomically), then the hooks run
//! with the names of the sections that changed, so a real service can be rendered and
//! reloaded from the files.
//!
//! Secrets are decrypted here, with the cluster's identities, and only here: the files
//! hold the clear values the service needs ([`crate::secret`]).
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
use crate::mesh::{EditKind, HookRun, LocalEdit, RunReport};
use crate::resolve::entries::EntryLayers;
use crate::schema::Catalogue;
use crate::state::Live;

/// The running config of `machine`, pure: every section of `catalogue` (the one the live
/// entries record), resolved as `strata show` resolves it — defined at a mode, or the
/// factory default — as canonical KDL, with its secrets decrypted. A secret no identity
/// of the cluster decrypts stays encrypted in the file (see [`running_config_checked`]).
pub fn running_config(
    live: &Live,
    machine: &str,
    catalogue: &Catalogue,
) -> BTreeMap<String, String> {
    running_config_checked(live, machine, catalogue).0
}

/// [`running_config`], and the secrets it could not decrypt, each named by where it is
/// and why (never by its value); each is logged.
pub fn running_config_checked(
    live: &Live,
    machine: &str,
    catalogue: &Catalogue,
) -> (BTreeMap<String, String>, Vec<String>) {
    let identities = crate::secret::identity::keys(
        crate::secret::identity::all(live)
            .into_iter()
            .map(|(_, i)| i),
    );
    let layers = EntryLayers::new(
        live.iter()
            .filter_map(|(k, e)| e.value.as_ref().map(|v| (k, v))),
    );
    let mut out: BTreeMap<String, String> = catalogue
        .sections
        .values()
        .map(|s| (s.name.clone(), s.default.to_canonical()))
        .collect();
    let mut failures = Vec::new();
    for (section, (node, _)) in layers.effective(catalogue, machine) {
        let mut node = node.clone();
        for failed in crate::secret::identity::decrypt_node(&mut node, &identities, machine) {
            tracing::error!(
                "a secret of the running config cannot be decrypted, {failed}; \
                 re-encrypt it to the cluster (`strata secret reencrypt`)"
            );
            failures.push(failed);
        }
        out.insert(section.to_owned(), node.to_canonical());
    }
    (out, failures)
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

/// What differs between the running config a machine should have (`config`) and what it
/// has (`found`), section by section.
pub fn compare(
    config: &BTreeMap<String, String>,
    found: &BTreeMap<String, String>,
) -> Vec<LocalEdit> {
    let mut edits = Vec::new();
    for (section, text) in config {
        match found.get(section) {
            None => edits.push(LocalEdit {
                section: section.clone(),
                kind: EditKind::Removed,
            }),
            Some(t) if t != text => edits.push(LocalEdit {
                section: section.clone(),
                kind: EditKind::Edited,
            }),
            Some(_) => {}
        }
    }
    for section in found.keys().filter(|s| !config.contains_key(*s)) {
        edits.push(LocalEdit {
            section: section.clone(),
            kind: EditKind::Added,
        });
    }
    edits.sort_by(|a, b| a.section.cmp(&b.section));
    edits
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
