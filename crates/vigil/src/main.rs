//! The `vigil` binary: command-line parsing and wiring. Everything it does is a call into
//! the library crates; this file only turns flags, files and the environment into their
//! inputs and their results into output and exit codes.

mod cli;
mod compose;
mod demo;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The sandbox helper must stay single-threaded, so it is dispatched before anything
    // else in the process starts (no runtime, no logging, no argument parser).
    // Built-in plugins run the same way, inside the sandbox the helper set up.
    let mut args = std::env::args_os();
    let first = args.nth(1);
    let rest = || args.map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>();
    if first.as_ref().is_some_and(|a| a == vigil_harness::sandbox::HELPER_SUBCOMMAND) {
        vigil_harness::sandbox::helper::main(&rest());
    }
    if first.as_ref().is_some_and(|a| a == vigil_harness::builtin::PLUGIN_SUBCOMMAND) {
        let code = vigil_harness::builtin::main(&rest());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
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
