//! The `vigil` binary: command-line parsing and wiring. Everything it does is a call into
//! the library crates; this file only turns flags, files and the environment into their
//! inputs and their results into output and exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
