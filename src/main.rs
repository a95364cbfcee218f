//! The `strata` binary: arguments in, exit code out.

fn main() -> std::process::ExitCode {
    strata::cli::main()
}
