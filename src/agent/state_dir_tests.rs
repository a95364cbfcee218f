//! Tests of the state dir: creation, locking, modes, keys and settings.

use super::*;

#[test]
fn a_state_dir_is_created_once_and_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let sd = StateDir::open(dir.path(), Some("lab1"), Some("127.0.0.1:0")).unwrap();
    assert!(sd.fingerprint().starts_with("SHA256:"));
    assert_eq!(sd.settings.machine, "lab1");
    assert!(matches!(
        StateDir::open(dir.path(), None, None),
        Err(StateDirError::Locked(_))
    ));
    let fp = sd.fingerprint();
    drop(sd);
    // Reopened: same keys, settings kept.
    let sd = StateDir::open(dir.path(), Some("other"), None).unwrap();
    assert_eq!(sd.fingerprint(), fp);
    assert_eq!(sd.settings.machine, "lab1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(sd.layout.host_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[test]
fn everything_is_created_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let sd = StateDir::open(&dir, Some("lab1"), None).unwrap();
    let l = &sd.layout;
    assert_eq!(mode(&dir), 0o700);
    for file in [
        l.settings(),
        l.host_key(),
        l.local_key(),
        l.store(),
        l.lock(),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // The store file made empty here is one redb opens as a new store.
    drop(sd);
    crate::state::DiskStore::open(&dir.join("store.redb")).unwrap();
    assert_eq!(mode(&dir.join("store.redb")), 0o600);
}

#[cfg(unix)]
#[test]
fn a_state_dir_others_may_change_or_a_store_they_may_read_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    drop(StateDir::open(&dir, Some("lab1"), None).unwrap());

    chmod(&dir, 0o777);
    let err = StateDir::open(&dir, None, None).unwrap_err().to_string();
    assert!(
        err.contains("mode 0777 lets others than its owner change what is in it"),
        "{err}"
    );
    chmod(&dir, 0o755);
    StateDir::open(&dir, None, None).unwrap();

    let store = dir.join("store.redb");
    chmod(&store, 0o644);
    let err = StateDir::open(&dir, None, None).unwrap_err().to_string();
    assert!(err.contains("store.redb: mode 0644"), "{err}");
    chmod(&store, 0o600);

    let settings = dir.join("agent.kdl");
    chmod(&settings, 0o644);
    StateDir::open(&dir, None, None).unwrap();
    chmod(&settings, 0o664);
    let err = StateDir::open(&dir, None, None).unwrap_err().to_string();
    assert!(
        err.contains("agent.kdl: mode 0664 lets others than its owner change it"),
        "{err}"
    );
    chmod(&settings, 0o600);

    let running = dir.join("running");
    fs::create_dir(&running).unwrap();
    chmod(&running, 0o770);
    let err = StateDir::open(&dir, None, None).unwrap_err().to_string();
    assert!(err.contains("running: mode 0770"), "{err}");
    chmod(&running, 0o700);

    // A directory above that anyone may write, without the sticky bit /tmp has.
    let open = tmp.path().join("open");
    fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let err = StateDir::open(&open.join("state"), Some("lab1"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mode 0777 lets others rename or replace"),
        "{err}"
    );
    chmod(&open, 0o1777);
    StateDir::open(&open.join("state"), Some("lab1"), None).unwrap();
}

/// Only root can give a file to another user; elsewhere this test has nothing to do.
#[cfg(unix)]
#[test]
fn a_key_another_user_owns_is_refused() {
    if rustix::process::geteuid().as_raw() != 0 {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    drop(StateDir::open(&dir, Some("lab1"), None).unwrap());
    let key = dir.join("local_key");
    std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
    let err = StateDir::open(&dir, None, None).unwrap_err().to_string();
    assert!(
        err.contains("local_key: owned by uid 65534, not by the user the agent runs as (uid 0)"),
        "{err}"
    );
    std::os::unix::fs::chown(&key, Some(0), None).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
    let err = StateDir::open(&dir, None, None).unwrap_err().to_string();
    assert!(err.contains("owned by uid 65534"), "{err}");
}

#[cfg(unix)]
#[test]
fn key_files_others_may_read_are_refused_and_never_written() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    // A temporary file left behind with a loose mode must not pass it on.
    let tmp = dir
        .path()
        .join(format!(".local_key.strata-{}.tmp", std::process::id()));
    fs::write(&tmp, "old").unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    let sd = StateDir::open(dir.path(), Some("lab1"), None).unwrap();
    assert_eq!(mode(&sd.layout.local_key()), 0o600);
    let local_key = sd.layout.local_key();
    drop(sd);
    fs::set_permissions(&local_key, fs::Permissions::from_mode(0o644)).unwrap();
    let err = StateDir::open(dir.path(), None, None).unwrap_err();
    assert!(
        err.to_string().contains("mode 0644") && err.to_string().contains("local_key"),
        "{err}"
    );
    fs::set_permissions(&local_key, fs::Permissions::from_mode(0o600)).unwrap();
    StateDir::open(dir.path(), None, None).unwrap();
}
