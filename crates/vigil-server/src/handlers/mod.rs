//! Endpoint handlers, one module per resource. Each is a thin adapter: parse, call the
//! store on a blocking thread, wrap the answer in an envelope.

pub mod audit;
pub mod budgets;
pub mod gateway;
pub mod health;
pub mod immune;
pub mod ingest;
pub mod keys;
pub mod known_issues;
pub mod meta;
pub mod otlp;
pub mod policies;
pub mod runs;
pub mod uploads;
