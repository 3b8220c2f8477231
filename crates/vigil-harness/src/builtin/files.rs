//! [`Files`] on the sandbox's folders, as a built-in's [`Request`] names them.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use vigil_pack::protocol::Request;
use vigil_pack::{Files, Input, Shared};

/// Buffer of shared-file readers and writers (snapshots run to gigabytes).
const SHARED_BUFFER_BYTES: usize = 1 << 20;

/// The files of one built-in execution.
#[derive(Debug)]
pub struct SandboxFiles<'r> {
    request: &'r Request,
}

impl<'r> SandboxFiles<'r> {
    pub fn new(request: &'r Request) -> SandboxFiles<'r> {
        SandboxFiles { request }
    }
}

/// `dir/name`, where `name` must be a plain file name: a plugin names files, never paths.
fn inside(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
    if !plain {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a plain file name")));
    }
    Ok(dir.join(name))
}

impl Files for SandboxFiles<'_> {
    fn input(&self) -> io::Result<Box<dyn Input>> {
        Ok(Box::new(BufReader::new(File::open(&self.request.input.path)?)))
    }

    fn dependency_response(&self, plugin: &str) -> io::Result<Vec<u8>> {
        let dependency = self.request.dependencies.get(plugin).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{plugin} is not a dependency of this plugin"))
        })?;
        std::fs::read(&dependency.response_path)
    }

    fn shared_by(&self, plugin: &str, name: &str) -> io::Result<Option<Shared>> {
        let Some(dir) = self.request.dependencies.get(plugin).and_then(|d| d.share_dir.as_deref()) else {
            return Ok(None);
        };
        match File::open(inside(dir, name)?) {
            Ok(file) => {
                let len = file.metadata()?.len();
                Ok(Some(Shared { reader: Box::new(BufReader::with_capacity(SHARED_BUFFER_BYTES, file)), len }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn share(&self, name: &str) -> io::Result<Option<Box<dyn Write>>> {
        let Some(dir) = &self.request.share_dir else { return Ok(None) };
        let file = File::create(inside(dir, name)?)?;
        Ok(Some(Box::new(BufWriter::with_capacity(SHARED_BUFFER_BYTES, file))))
    }

    fn unshare(&self, name: &str) -> io::Result<()> {
        let Some(dir) = &self.request.share_dir else { return Ok(()) };
        match std::fs::remove_file(inside(dir, name)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn write_artifact(&self, name: &str, content: &[u8]) -> io::Result<()> {
        std::fs::write(inside(&self.request.output_dir, name)?, content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_reached() {
        let dir = Path::new("/run/out");
        assert_eq!(inside(dir, "profile.json").expect("plain"), dir.join("profile.json"));
        for name in ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "a\0b"] {
            assert_eq!(inside(dir, name).expect_err(name).kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }
}
