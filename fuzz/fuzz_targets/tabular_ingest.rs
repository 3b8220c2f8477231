//! Tabular ingest of any bytes, as detected (delimited or JSON) and as JSON forced: never
//! a panic; the result does not depend on how the input is cut into blocks or how many
//! threads read it; every column holds every row; the profile of whatever was read runs.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use vigil_tabular::read::ReadOptions;
use vigil_tabular::{IngestOptions, InputFormat, ingest};

/// A record cap of 64 bytes, so records over it are common in fuzzed input and whether
/// one is left out must not depend on where the blocks fell.
fn options(format: Option<InputFormat>, block_bytes: usize, threads: usize) -> IngestOptions {
    IngestOptions {
        format,
        read: ReadOptions { block_bytes, threads, max_record_bytes: 64, ..ReadOptions::default() },
        ..IngestOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    for format in [None, Some(InputFormat::Json)] {
        let whole = ingest(Cursor::new(data), &options(format, 1 << 20, 1));
        let cut = ingest(Cursor::new(data), &options(format, 7, 2));
        match (&whole, &cut) {
            (Ok(a), Ok(b)) => {
                assert_eq!((a.rows, a.columns.len(), &a.data_hash), (b.rows, b.columns.len(), &b.data_hash));
                assert_eq!(a.problems, b.problems);
                assert_eq!(a.renamed, b.renamed);
                let names = |d: &vigil_tabular::Dataset| d.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
                assert_eq!(names(a), names(b));
                for column in &a.columns {
                    assert_eq!(column.values.len(), a.rows, "{}", column.name);
                }
                let profile = vigil_tabular::profile::profile(&a.columns, a.rows, 2);
                assert_eq!(profile.columns.len(), a.columns.len());
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("block size changed the outcome: {:?} vs {:?}", whole.is_ok(), cut.is_ok()),
        }
    }
});
