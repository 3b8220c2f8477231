//! Bakes the digest of the built-in plugins' source (this crate's, the tabular pack's and
//! the lockfile's) into the crate as `VIGIL_BUILTIN_SOURCE_SHA256`, so that a build whose
//! built-ins could compute differently never reuses another build's cached results.

#[path = "src/source_digest.rs"]
mod source_digest;

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for entry in source_digest::SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(entry).display());
    }
    let digest = source_digest::digest(&root, &source_digest::SOURCES).expect("reading the built-ins' source");
    println!("cargo:rustc-env=VIGIL_BUILTIN_SOURCE_SHA256={digest}");
}
