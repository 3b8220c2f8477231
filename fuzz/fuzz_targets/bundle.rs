//! Bundles are zips from elsewhere: unpacking one never panics, never writes outside its
//! folder, and never writes more than its cap.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const CAP_BYTES: u64 = 1 << 20;

fn root() -> &'static std::path::Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| tempfile::tempdir().expect("tempdir")).path()
}

fn size_of(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let meta = std::fs::symlink_metadata(e.path()).expect("metadata");
            assert!(!meta.file_type().is_symlink(), "a link was unpacked");
            if meta.is_dir() { size_of(&e.path()) } else { meta.len() }
        })
        .sum()
}

fuzz_target!(|data: &[u8]| {
    let work = root().join("work");
    let _ = std::fs::remove_dir_all(root());
    std::fs::create_dir_all(&work).expect("mkdir");
    let _ = vigil_harness::bundle::unpack(std::io::Cursor::new(data), &work, CAP_BYTES);
    // Nothing beside the work folder, and no more than the cap (plus one buffer) inside.
    let siblings: Vec<_> = std::fs::read_dir(root()).expect("list").flatten().map(|e| e.file_name()).collect();
    assert_eq!(siblings, ["work"], "wrote outside its folder");
    assert!(size_of(&work) <= CAP_BYTES + 64 * 1024);
});
