//! Paths made absolute where they are read, the one place that does it: a path from the
//! command line against the current directory, a path in `agent.kdl` against the state
//! dir. What the agent hands on — the state dir in the git hook's environment (git runs
//! the hook inside the repository), a hook's command, a followed repo — then means the
//! same thing whatever directory the process that reads it runs in.
//!
//! Made absolute without touching the file system: no symbolic link is resolved and the
//! path need not exist yet (a state dir is created on first start), as
//! [`std::path::absolute`] does.

use std::path::{Path, PathBuf};

/// `path` made absolute against the current directory. Fails only when the current
/// directory cannot be read (it was removed) or the path is empty.
pub fn absolute(path: &Path) -> Result<PathBuf, String> {
    if path.as_os_str().is_empty() {
        return Err("an empty path names no file".into());
    }
    std::path::absolute(path).map_err(|e| {
        format!(
            "cannot make `{}` absolute: the current directory cannot be read ({e})",
            path.display()
        )
    })
}

/// `path` made absolute against `base` (itself absolute): a path in a settings file read
/// from `base`. An absolute path is kept as it is.
pub fn absolute_in(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    // `base` is absolute, so this only tidies `.` components; it cannot fail.
    let joined = base.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// A command as `agent.kdl` names it: a name with no `/` is looked up on `PATH` as a
/// shell does, and stays as it is; one with a `/` (`bin/reload`, `./render.sh`) is a path
/// and is made absolute against `base`.
pub fn command_in(base: &Path, command: &str) -> String {
    if command.contains('/') {
        absolute_in(base, Path::new(command))
            .to_string_lossy()
            .into_owned()
    } else {
        command.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute_against_the_current_directory() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            absolute(Path::new("st/lab2")).unwrap(),
            here.join("st/lab2")
        );
        assert_eq!(absolute(Path::new("./st")).unwrap(), here.join("st"));
        assert_eq!(absolute(Path::new(".")).unwrap(), here);
        assert_eq!(absolute(Path::new("/srv/x")).unwrap(), Path::new("/srv/x"));
        assert!(absolute(Path::new("")).unwrap_err().contains("empty path"));
    }

    #[test]
    fn settings_paths_are_read_from_their_directory() {
        let base = Path::new("/var/lib/strata");
        assert_eq!(
            absolute_in(base, Path::new("running")),
            Path::new("/var/lib/strata/running")
        );
        assert_eq!(
            absolute_in(base, Path::new("./repo")),
            Path::new("/var/lib/strata/repo")
        );
        assert_eq!(absolute_in(base, Path::new("/srv/a")), Path::new("/srv/a"));
        assert_eq!(command_in(base, "sh"), "sh");
        assert_eq!(command_in(base, "bin/reload"), "/var/lib/strata/bin/reload");
        assert_eq!(command_in(base, "/usr/bin/x"), "/usr/bin/x");
    }
}
