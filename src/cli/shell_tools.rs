//! `strata completions` and `strata manpages`: shell completion scripts (clap_complete)
//! and manual pages (clap_mangen), both generated from the one clap command the parser
//! uses ([`super::command`]), so they list exactly the commands, flags and exit codes
//! `--help` shows. Hidden commands (`git-hook`) get neither.

use std::path::{Path, PathBuf};

use clap::Args;
use clap_complete::Shell;

use super::args::{Format, absolute_path};
use super::files::{NewFile, write_all};
use super::json::ManpagesJson;
use super::output::Output;
use super::{CliError, ErrorKind, Failure, Outcome};

/// `strata completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `strata manpages`.
#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// The directory to write the pages to (made if missing; pages already there are
    /// replaced).
    #[arg(value_name = "DIR", value_parser = absolute_path())]
    pub dir: PathBuf,
}

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs, out: &Output) -> Result<Outcome, CliError> {
    if out.format != Format::Human {
        return Err(Failure::of(
            ErrorKind::Usage,
            "`strata completions` prints a shell script, not JSON",
            "drop --format; redirect the output to a file your shell reads",
        ));
    }
    let mut cmd = super::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "strata", &mut script);
    out.print(&String::from_utf8_lossy(&script));
    Ok(Outcome::Ok)
}

/// Writes one page per command and subcommand into `args.dir`: every page or none.
pub fn manpages(args: ManpagesArgs, out: &Output) -> Result<Outcome, CliError> {
    // The nearest part of DIR that exists must be a directory: the rest is made.
    if let Some(file) = args
        .dir
        .ancestors()
        .find(|p| p.exists())
        .filter(|p| !p.is_dir())
    {
        return Err(Failure::new(
            format!("{} is not a directory", file.display()),
            "give a directory for the manual pages (made if missing)",
        ));
    }
    let pages = pages()?;
    let files: Vec<NewFile> = pages
        .iter()
        .map(|(name, text)| NewFile {
            rel: name,
            text,
            expect: None,
        })
        .collect();
    write_all(&args.dir, &files)?;
    let names: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    if out.format == Format::Json {
        out.json(&ManpagesJson {
            dir: args.dir.display().to_string(),
            pages: names,
        });
    } else {
        out.print(&format!(
            "wrote {} to {}\n",
            crate::text::count(names.len(), "manual page"),
            args.dir.display()
        ));
        out.print(&hint(&args.dir));
    }
    Ok(Outcome::Ok)
}

/// How to read the pages just written, when `man` would not find them by itself.
fn hint(dir: &Path) -> String {
    format!(
        "read them with `man -l {}`, or put the directory on MANPATH\n",
        dir.join("strata.1").display()
    )
}

/// Every page as (file name, roff text): `strata.1`, `strata-cluster.1`,
/// `strata-cluster-join.1`, … in the order the commands are declared.
pub fn pages() -> Result<Vec<(String, String)>, CliError> {
    let mut cmd = super::command().disable_help_subcommand(true);
    // Gives each subcommand its display name (`strata-cluster-join`) for its page.
    cmd.build();
    let mut pages = Vec::new();
    collect(cmd, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: clap::Command, pages: &mut Vec<(String, String)>) -> Result<(), CliError> {
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let man = clap_mangen::Man::new(cmd);
    let mut roff = Vec::new();
    man.render(&mut roff)
        .map_err(|e| Failure::bug(format!("cannot render a manual page: {e}")))?;
    let text = String::from_utf8(roff)
        .map_err(|e| Failure::bug(format!("a manual page is not UTF-8: {e}")))?;
    pages.push((man.get_filename(), text));
    for sub in subs {
        collect(sub, pages)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_has_a_page_named_after_its_path() {
        let pages = pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for name in [
            "strata.1",
            "strata-agent.1",
            "strata-cluster.1",
            "strata-cluster-join.1",
            "strata-cluster-prepjoin-add.1",
            "strata-completions.1",
            "strata-manpages.1",
        ] {
            assert!(names.contains(&name), "no {name} in {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("git-hook")), "{names:?}");
        assert!(!names.iter().any(|n| n.ends_with("-help.1")), "{names:?}");
        let join = &pages
            .iter()
            .find(|(n, _)| n == "strata-cluster-join.1")
            .unwrap()
            .1;
        assert!(join.starts_with(".ie \\n(.g .ds Aq"), "{join}");
        assert!(join.contains(".TH strata-cluster-join 1"), "{join}");
        assert!(join.contains("\\-\\-fingerprint"), "{join}");
        assert!(join.contains("Exit codes: 0 joined"), "{join}");
    }
}
