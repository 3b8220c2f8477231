//! The tabular statistics pack: what an analyst's ERP export (orders, invoices, ledger
//! lines, vendors) goes through to become a report they can cite.
//!
//! It owns reading a table (encodings, dialects, type inference with evidence, a canonical
//! content hash), profiling it, the analyses (outliers, Benford, volume by period,
//! referential checks, PII) and the report. It is its own crate so the rest of Vigil builds
//! and tests without it; the harness runs it as built-in plugins.
//!
//! Built so far:
//! - [`value`]: strict, allocation-free readers for one cell (numbers with thousands
//!   separators, currency and percent strings, booleans, dates and date-times).
//! - [`sniff`]: a file's encoding (UTF-8, with BOM, UTF-16, Latin-1), decoded as a stream,
//!   and its dialect (delimiter, header), each with the evidence for the choice.

pub mod sniff;
pub mod value;
