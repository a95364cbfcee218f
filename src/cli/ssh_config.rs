//! `--target` through the user's OpenSSH configuration, as `ssh HOST` reads it:
//! `~/.ssh/config`, then `/etc/ssh/ssh_config` (or only `--ssh-config FILE`, as `ssh -F`
//! does). The first `Host` block whose patterns match the target gives each option, in
//! OpenSSH's order; parsing (patterns, `Include`, quoting, `~`) is the ssh2-config
//! crate's. Strata uses HostName, User, Port, IdentityFile, IdentitiesOnly and
//! UserKnownHostsFile; other options are read and left alone.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use ssh2_config::{HostParams, ParseRule, SshConfig};

use super::{CliError, Failure};

/// What the configuration says about one target.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostOptions {
    /// The name to connect to (`HostName`), if not the target's own.
    pub host_name: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `User`.
    pub user: Option<String>,
    /// `IdentityFile`s, in order, `~` and `%` tokens expanded.
    pub identity_files: Vec<PathBuf>,
    /// `IdentitiesOnly yes`: of the ssh-agent's keys, only those of the identity files.
    pub identities_only: bool,
    /// The first `UserKnownHostsFile` (where a key learned on first use is recorded, as
    /// OpenSSH does); `None` for `none` or when not set.
    pub known_hosts: Option<PathBuf>,
}

/// The configuration files read: `flag` (`--ssh-config`; `none` reads none) alone, else
/// the user's and the system's.
pub fn files(flag: Option<&Path>, home: &Path) -> Vec<(PathBuf, bool)> {
    match flag {
        Some(p) if p == Path::new("none") => Vec::new(),
        // Named by the user: it must exist.
        Some(p) => vec![(p.to_path_buf(), true)],
        None => vec![
            (home.join(".ssh/config"), false),
            (PathBuf::from("/etc/ssh/ssh_config"), false),
        ],
    }
}

/// What `files` say about `target` (the name given to `--target`, without its port).
/// A file that must exist and does not, or one OpenSSH would not parse either, is an
/// error naming it.
pub fn lookup(
    target: &str,
    files: &[(PathBuf, bool)],
    home: &Path,
) -> Result<HostOptions, CliError> {
    let mut params: Option<HostParams> = None;
    for (path, required) in files {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Failure::new(
                    format!("cannot read the SSH config {}: {e}", path.display()),
                    "give a readable ssh_config(5) file, or --ssh-config none to read none",
                ));
            }
        };
        // Options Strata does not know are kept, not refused: the file is the user's
        // `ssh`'s too, and may use any of them.
        let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        let config = SshConfig::default()
            .home_dir(home)
            .parse(&mut BufReader::new(file), rules)
            .map_err(|e| {
                Failure::new(
                    format!("cannot parse the SSH config {}: {e}", path.display()),
                    "fix the file (`ssh -G HOST` shows how OpenSSH reads it), or pass --ssh-config none",
                )
            })?;
        let found = config.query(target);
        match &mut params {
            // Earlier files win, option by option.
            Some(p) => p.overwrite_if_none(&found),
            None => params = Some(found),
        }
    }
    let Some(params) = params else {
        return Ok(HostOptions::default());
    };
    let raw = |name: &str| params.unsupported_fields.get(name).and_then(|a| a.first());
    let host_name = params.host_name.as_deref().map(|h| h.replace("%h", target));
    let tokens = Tokens {
        home,
        host: host_name.as_deref().unwrap_or(target),
        alias: target,
        user: params.user.as_deref(),
        port: params.port,
    };
    let known_hosts = raw("userknownhostsfile")
        .filter(|f| !f.eq_ignore_ascii_case("none"))
        .map(|f| PathBuf::from(tokens.expand(f)));
    Ok(HostOptions {
        identity_files: params
            .identity_file
            .iter()
            .flatten()
            .map(|p| PathBuf::from(tokens.expand(&p.to_string_lossy())))
            .collect(),
        identities_only: raw("identitiesonly")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true")),
        known_hosts,
        host_name,
        port: params.port,
        user: params.user.clone(),
    })
}

/// The values of ssh_config(5)'s `%` tokens that file names may use.
struct Tokens<'a> {
    home: &'a Path,
    host: &'a str,
    alias: &'a str,
    user: Option<&'a str>,
    port: Option<u16>,
}

impl Tokens<'_> {
    /// `path` with a leading `~` and the tokens `%%`, `%d`, `%h`, `%n`, `%p`, `%r` and
    /// `%u` replaced; an unknown token is kept as written.
    fn expand(&self, path: &str) -> String {
        let path = match path.strip_prefix("~/") {
            Some(rest) => format!("{}/{rest}", self.home.display()),
            None if path == "~" => self.home.display().to_string(),
            None => path.to_owned(),
        };
        let local = std::env::var("USER").unwrap_or_default();
        let mut out = String::new();
        let mut chars = path.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('d') => out.push_str(&self.home.display().to_string()),
                Some('h') => out.push_str(self.host),
                Some('n') => out.push_str(self.alias),
                Some('p') => out.push_str(&self.port.unwrap_or(22).to_string()),
                Some('r') => out.push_str(self.user.unwrap_or(&local)),
                Some('u') => out.push_str(&local),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_host_block_gives_each_option() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let config = home.join("config");
        std::fs::write(
            &config,
            "# as a user writes it\n\
             Host lab1 lab1.alias\n    HostName 127.0.0.1\n    Port 2300\n    User ada\n    \
             IdentityFile ~/.ssh/lab_%n\n    UserKnownHostsFile ~/.ssh/strata_hosts\n    ForwardAgent no\n\
             Host lab* !lab9\n    User bob\n    Port 2400\n    IdentitiesOnly yes\n    IdentityFile %d/.ssh/shared\n\
             Match host other\n    SomeFutureOption yes\n",
        )
        .unwrap();
        let files = vec![(config.clone(), true)];
        let lab1 = lookup("lab1", &files, home).unwrap();
        assert_eq!(lab1.host_name.as_deref(), Some("127.0.0.1"));
        assert_eq!((lab1.port, lab1.user.as_deref()), (Some(2300), Some("ada")));
        assert_eq!(
            lab1.identity_files,
            [home.join(".ssh/lab_lab1"), home.join(".ssh/shared")]
        );
        assert_eq!(lab1.known_hosts, Some(home.join(".ssh/strata_hosts")));
        assert!(lab1.identities_only);
        let lab2 = lookup("lab2", &files, home).unwrap();
        assert_eq!((lab2.port, lab2.user.as_deref()), (Some(2400), Some("bob")));
        assert_eq!(lab2.host_name, None);
        // A negated pattern excludes the host.
        assert_eq!(
            lookup("lab9", &files, home).unwrap(),
            HostOptions::default()
        );
        // A missing default file is no error; a missing named one is.
        let missing = vec![(home.join("nope"), false)];
        assert_eq!(
            lookup("lab1", &missing, home).unwrap(),
            HostOptions::default()
        );
        let err = lookup("lab1", &[(home.join("nope"), true)], home).unwrap_err();
        assert!(
            err.to_string().contains("cannot read the SSH config"),
            "{err}"
        );
        std::fs::write(&config, "Host lab1\n    Port many\n").unwrap();
        let err = lookup("lab1", &files, home).unwrap_err();
        assert!(
            err.to_string().contains("cannot parse the SSH config"),
            "{err}"
        );
        assert!(super::files(Some(Path::new("none")), home).is_empty());
    }
}
