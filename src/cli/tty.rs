//! The terminal the user sits at: questions are written to `/dev/tty` and answered
//! there, whatever stdin is, so a piped stdin never answers one (a passphrase, "Do you
//! want to perform these actions?").

use std::io::{BufRead, Write};

/// Whether someone is likely watching: stdin or stderr is a terminal. A run whose
/// standard streams all go elsewhere (CI, cron, a script's pipes) is not asked anything,
/// even when the process still has a controlling terminal nobody may be looking at.
pub fn attended() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() || std::io::stderr().is_terminal()
}

/// Writes `prompt` on the terminal and reads one line back, without its line ending;
/// with `echo` off, what is typed is not shown (a passphrase: rpassword turns the
/// terminal's echo off and back on). End of input reads as an empty line.
pub fn ask(prompt: &str, echo: bool) -> std::io::Result<String> {
    if !echo {
        return rpassword::prompt_password(prompt);
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}
