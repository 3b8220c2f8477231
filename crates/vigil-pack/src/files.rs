//! The files port: everything a built-in plugin reads or writes, named by what it is
//! rather than where it lies.
//!
//! In a run the harness implements it on the sandbox's folders (the request's input path,
//! output folder, share folder and its dependencies' folders); a pack's tests implement it
//! in memory ([`crate::testing`]). A plugin never builds a path.

use std::io::{self, Read, Seek, Write};

/// The input, readable and seekable (a workbook is a zip archive, read from its end).
pub trait Input: Read + Seek {}

impl<T: Read + Seek> Input for T {}

/// A file a dependency shared, with its length in bytes.
pub struct Shared {
    pub reader: Box<dyn Read>,
    pub len: u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("len", &self.len).finish_non_exhaustive()
    }
}

/// What a plugin reads and writes.
pub trait Files {
    /// The run's input, from its first byte. Each call opens it anew.
    fn input(&self) -> io::Result<Box<dyn Input>>;

    /// The response (JSON) of the dependency `plugin`.
    fn dependency_response(&self, plugin: &str) -> io::Result<Vec<u8>>;

    /// The file `name` the dependency `plugin` shared with this run, if it still exists:
    /// a result reused from an earlier run comes without its shared files.
    fn shared_by(&self, plugin: &str, name: &str) -> io::Result<Option<Shared>>;

    /// Creates the file `name` shared with the plugins after this one, or `None` when this
    /// execution shares nothing. Only a shortcut: a dependent must work without it. The
    /// writer may buffer: `flush` it when done, which reports what could not be written.
    fn share(&self, name: &str) -> io::Result<Option<Box<dyn Write>>>;

    /// Removes the shared file `name` (one that could not be finished), if it exists.
    fn unshare(&self, name: &str) -> io::Result<()>;

    /// Writes the artifact `name` (a plain file name) into the plugin's output.
    fn write_artifact(&self, name: &str, content: &[u8]) -> io::Result<()>;
}
