//! End-to-end tests: each starts the real `vigil` binary on a free loopback port with its
//! own data directory and talks to it over HTTP and the CLI, as a user would.

mod access;
mod api;
mod audit;
mod budgets;
mod cli;
mod crash;
mod gateway;
mod governance;
mod hardening;
mod harness;
mod immune;
mod mock_upstream;
mod otlp;
mod runs;
mod sandbox;
mod support;
