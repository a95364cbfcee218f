//! Passphrases on the command line: the first line of a file, or asked twice on the
//! terminal with echo off; and `strata hash-passphrase`, which prints the argon2id hash a
//! `users` entry stores (as mkpasswd does). A passphrase is never echoed or printed.

use std::path::Path;

use super::agent_args::HashPassphraseArgs;
use super::args::Format;
use super::json::HashPassphraseJson;
use super::output::Output;
use super::{CliError, Failure, Outcome};
use crate::cluster::users::hash_passphrase;

/// A new passphrase: read from `file`, else asked twice on the terminal. An empty one,
/// or two answers that differ, are refused.
pub fn new_passphrase(file: Option<&Path>) -> Result<String, CliError> {
    let passphrase = match file {
        Some(path) => from_file(path)?,
        None => {
            let first = ask("New passphrase: ")?;
            let second = ask("Again: ")?;
            if first != second {
                return Err(Failure::new(
                    "the two passphrases differ; nothing was changed",
                    "type the same passphrase twice",
                ));
            }
            first
        }
    };
    if passphrase.is_empty() {
        return Err(Failure::new(
            "the passphrase is empty",
            "give a passphrase of at least one character",
        ));
    }
    Ok(passphrase)
}

/// A passphrase to prove (the cluster admin passphrase, to join): read from `file`, else
/// from STRATA_PASSPHRASE, else asked once on the terminal. An empty one is refused.
pub fn existing_passphrase(file: Option<&Path>, prompt: &str) -> Result<String, CliError> {
    let passphrase = match (file, std::env::var("STRATA_PASSPHRASE")) {
        (Some(path), _) => from_file(path)?,
        (None, Ok(p)) => p,
        (None, Err(_)) => ask(prompt)?,
    };
    if passphrase.is_empty() {
        return Err(Failure::new(
            "the passphrase is empty",
            "give the passphrase set with `strata cluster passwd`",
        ));
    }
    Ok(passphrase)
}

/// The first line of `path` (`-`: standard input), without its line ending.
fn from_file(path: &Path) -> Result<String, CliError> {
    let read = if path == Path::new("-") {
        use std::io::BufRead;
        let mut line = Vec::new();
        std::io::stdin()
            .lock()
            .read_until(b'\n', &mut line)
            .map(|_| line)
    } else {
        std::fs::read(path)
    };
    let text = read.map_err(|e| {
        Failure::new(
            format!("cannot read the passphrase file {}: {e}", path.display()),
            "give a readable file whose first line is the passphrase",
        )
    })?;
    let text = String::from_utf8(text).map_err(|_| {
        Failure::new(
            format!("the passphrase file {} is not UTF-8", path.display()),
            "write the passphrase as UTF-8 text",
        )
    })?;
    Ok(first_line(&text).to_owned())
}

/// The text up to the first line break (`\n` or `\r\n`).
fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or_default();
    line.strip_suffix('\r').unwrap_or(line)
}

/// Asks on the terminal (`/dev/tty`, whatever stdin is) with echo off.
fn ask(prompt: &str) -> Result<String, CliError> {
    super::tty::ask(prompt, false).map_err(|e| {
        Failure::new(
            format!("no terminal to ask for the passphrase on: {e}"),
            "pass --passphrase-file FILE (its first line is the passphrase)",
        )
    })
}

/// Runs `strata hash-passphrase`.
pub fn hash(args: HashPassphraseArgs, out: &Output) -> Result<Outcome, CliError> {
    let passphrase = new_passphrase(args.passphrase_file.as_deref())?;
    let hash = hash_passphrase(&passphrase)
        .map_err(|e| Failure::bug(format!("the passphrase could not be hashed: {e}")))?;
    match out.format {
        Format::Json => out.json(&HashPassphraseJson {
            algorithm: "argon2id".to_owned(),
            hash,
        }),
        _ => out.print(&format!("{hash}\n")),
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_file_gives_its_first_line_and_an_empty_one_is_refused() {
        assert_eq!(first_line("open sesame\nsecond\n"), "open sesame");
        assert_eq!(first_line("crlf \r\n"), "crlf ");
        assert_eq!(first_line("no newline"), "no newline");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, " spaced out \n").unwrap();
        assert_eq!(new_passphrase(Some(&path)).unwrap(), " spaced out ");
        std::fs::write(&path, "\nlater").unwrap();
        let err = new_passphrase(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("the passphrase is empty"), "{err}");
        let err = new_passphrase(Some(&dir.path().join("missing"))).unwrap_err();
        assert!(
            err.to_string().contains("cannot read the passphrase file"),
            "{err}"
        );
    }
}
