//! Reading a typed-table snapshot (which a sandboxed plugin wrote, so it is outside input
//! to the plugins that read it): never a panic, never an allocation past the input's size;
//! whatever reads back writes back to the same bytes (NaN is not equal to itself, so bytes
//! are compared) with the same canonical hash, and can be profiled and analysed.
//!
//! An odd first byte makes the rest a table: its real snapshot is read with one byte
//! changed or cut short where the first byte says, so the reader's checks past the header
//! are reached; an even one hands the rest to the reader as it is.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use vigil_tabular::snapshot;
use vigil_tabular::table::data_hash;
use vigil_tabular::{IngestOptions, ingest};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if mode % 2 == 1 {
        let Ok(table) = ingest(Cursor::new(rest), &IngestOptions::default()) else { return };
        bytes.clear();
        if let Err(e) = snapshot::write_to(&mut bytes, &table.columns, table.rows) {
            // Only a table the reader would refuse is not written (rows without columns).
            assert!(matches!(e, snapshot::SnapshotError::RowsWithoutColumns(_)), "{e}");
            return;
        }
        let intact = snapshot::read_from(Cursor::new(&bytes), bytes.len() as u64).expect("an intact snapshot reads");
        assert_eq!(data_hash(&intact.0, intact.1, 1), table.data_hash);
        let at = (usize::from(mode) * 7919 + rest.len()) % bytes.len();
        if mode & 2 == 0 {
            bytes[at] ^= mode;
        } else {
            bytes.truncate(at);
        }
    }
    let Ok((columns, rows)) = snapshot::read_from(Cursor::new(&bytes), bytes.len() as u64) else { return };
    for column in &columns {
        assert_eq!(column.values.len(), rows, "{}", column.name);
    }
    let mut first = Vec::new();
    snapshot::write_to(&mut first, &columns, rows).expect("write");
    let (again, again_rows) = snapshot::read_from(Cursor::new(&first), first.len() as u64).expect("read back");
    assert_eq!(again_rows, rows);
    let mut second = Vec::new();
    snapshot::write_to(&mut second, &again, again_rows).expect("write again");
    assert_eq!(first, second);
    assert_eq!(data_hash(&again, rows, 1), data_hash(&columns, rows, 1));
    let profile = vigil_tabular::profile::profile(&columns, rows, 1);
    assert_eq!(profile.columns.len(), columns.len());
    let _ = vigil_tabular::analyses::analyse(&columns);
    if let [child, parent, ..] = &columns[..] {
        let checked = vigil_tabular::analyses::referential(child, parent);
        assert!(checked.unmatched_rows <= checked.rows);
    }
});
