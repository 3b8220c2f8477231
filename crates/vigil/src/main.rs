//! The `vigil` binary: command-line parsing and wiring. Everything it does is a call into
//! the library crates; this file only turns flags, files and the environment into their
//! inputs and their results into output and exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The sandbox helper must stay single-threaded, so it is dispatched before anything
    // else in the process starts (no runtime, no logging, no argument parser).
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == vigil_harness::sandbox::HELPER_SUBCOMMAND) {
        let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
        vigil_harness::sandbox::helper::main(&rest);
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
