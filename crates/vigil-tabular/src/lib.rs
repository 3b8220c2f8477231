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
//! - [`read`]: the delimited-file reader, parallel over chunks cut at record boundaries,
//!   with malformed rows counted by line number and a cap on record length.
//! - [`json`]: JSON arrays of records and JSON Lines, streamed into the same raw columns.
//! - [`infer`]: each column's kind and role, decided from every value, with evidence.
//! - [`table`]: the typed, columnar table and its canonical content hash.
//! - [`ingest`]: all of the above from a path or stream to a [`Dataset`].
//! - [`pii`]: personal data recognised in a cell, and redaction.
//! - [`profile`]: exact per-column statistics and per-dataset structure (duplicates,
//!   missingness, Pearson/Spearman/Cramér's V), defined as pandas/numpy/scipy define them.
//! - [`analyses`]: outliers (IQR fences, robust z), Benford's first-digit test, volume by
//!   period, referential checks between named columns, personal data findings (redacted).
//! - [`xlsx`]: XLSX workbooks, every sheet or chosen ones, with zip-bomb caps, into the
//!   same raw columns.
//! - [`snapshot`]: a typed table saved to a file and read back (checked), so later steps
//!   of a run need not parse the input again.
//! - [`pack`]: all of it as three built-in plugins, by [`vigil_pack`]'s contract.
//! - [`plot`]: the report's plots as SVG (histograms, missingness map, correlation
//!   matrices, Benford chart, volume by period).

pub mod analyses;
pub mod infer;
pub mod ingest;
pub mod json;
pub mod pack;
mod par;
pub mod pii;
pub mod plot;
pub mod profile;
mod radix;
pub mod read;
pub mod snapshot;
pub mod sniff;
pub mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod value;
pub mod xlsx;

pub use ingest::{Dataset, Format, IngestError, IngestOptions, InputFormat, ingest, ingest_delimited, ingest_path};
pub use par::default_threads;
pub use sniff::Chosen;
pub use table::{Column, Kind, Role, Values};

/// A map with a fast, fixed-seed hash (the same results every run; keys are table content
/// and column names, hashed millions of times).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
