//! A run in memory, for a pack's tests: the input, and per plugin its artifacts, its
//! shared files and its response, all readable and changeable by the test.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::files::{Files, Input, Shared};

#[derive(Debug, Default)]
struct State {
    input: Vec<u8>,
    /// By (plugin, name).
    artifacts: BTreeMap<(String, String), Vec<u8>>,
    shared: BTreeMap<(String, String), Vec<u8>>,
    responses: BTreeMap<String, Vec<u8>>,
}

/// One run's files, in memory. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct MemoryRun {
    state: Arc<Mutex<State>>,
}

impl MemoryRun {
    pub fn new(input: &[u8]) -> MemoryRun {
        let run = MemoryRun::default();
        run.set_input(input);
        run
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn set_input(&self, input: &[u8]) {
        self.state().input = input.to_vec();
    }

    /// The files as plugin `plugin` sees them; with `sees_shares` false its dependencies'
    /// shared files are missing, as for a result reused from an earlier run.
    pub fn files(&self, plugin: &str, sees_shares: bool) -> MemoryFiles {
        MemoryFiles { run: self.clone(), plugin: plugin.to_owned(), sees_shares }
    }

    pub fn artifact(&self, plugin: &str, name: &str) -> Option<Vec<u8>> {
        self.state().artifacts.get(&(plugin.to_owned(), name.to_owned())).cloned()
    }

    /// Every artifact of `plugin`, by name.
    pub fn artifacts(&self, plugin: &str) -> BTreeMap<String, Vec<u8>> {
        let state = self.state();
        state.artifacts.iter().filter(|((p, _), _)| p == plugin).map(|((_, n), b)| (n.clone(), b.clone())).collect()
    }

    pub fn shared(&self, plugin: &str, name: &str) -> Option<Vec<u8>> {
        self.state().shared.get(&(plugin.to_owned(), name.to_owned())).cloned()
    }

    /// Replaces (or with `None` removes) a shared file.
    pub fn set_shared(&self, plugin: &str, name: &str, bytes: Option<Vec<u8>>) {
        let key = (plugin.to_owned(), name.to_owned());
        match bytes {
            Some(bytes) => self.state().shared.insert(key, bytes),
            None => self.state().shared.remove(&key),
        };
    }

    pub fn response(&self, plugin: &str) -> Option<Vec<u8>> {
        self.state().responses.get(plugin).cloned()
    }

    pub fn set_response(&self, plugin: &str, json: Vec<u8>) {
        self.state().responses.insert(plugin.to_owned(), json);
    }
}

/// [`Files`] of one plugin in a [`MemoryRun`].
#[derive(Debug)]
pub struct MemoryFiles {
    run: MemoryRun,
    plugin: String,
    sees_shares: bool,
}

impl Files for MemoryFiles {
    fn input(&self) -> io::Result<Box<dyn Input>> {
        Ok(Box::new(Cursor::new(self.run.state().input.clone())))
    }

    fn dependency_response(&self, plugin: &str) -> io::Result<Vec<u8>> {
        self.run
            .response(plugin)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{plugin} has no response")))
    }

    fn shared_by(&self, plugin: &str, name: &str) -> io::Result<Option<Shared>> {
        if !self.sees_shares {
            return Ok(None);
        }
        Ok(self
            .run
            .shared(plugin, name)
            .map(|bytes| Shared { len: bytes.len() as u64, reader: Box::new(Cursor::new(bytes)) }))
    }

    fn share(&self, name: &str) -> io::Result<Option<Box<dyn Write>>> {
        self.run.set_shared(&self.plugin, name, Some(Vec::new()));
        Ok(Some(Box::new(SharedWriter { run: self.run.clone(), key: (self.plugin.clone(), name.to_owned()) })))
    }

    fn unshare(&self, name: &str) -> io::Result<()> {
        self.run.set_shared(&self.plugin, name, None);
        Ok(())
    }

    fn write_artifact(&self, name: &str, content: &[u8]) -> io::Result<()> {
        self.run.state().artifacts.insert((self.plugin.clone(), name.to_owned()), content.to_vec());
        Ok(())
    }
}

struct SharedWriter {
    run: MemoryRun,
    key: (String, String),
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.run.state();
        let file = state
            .shared
            .get_mut(&self.key)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the shared file was removed"))?;
        file.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
