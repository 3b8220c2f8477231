//! Reading a run's files from outside: an index, and single files read safely.
//!
//! A requested path must be relative, free of `..`, and resolve (symbolic links followed)
//! inside the run folder; scratch and shared space are never served. Reads are capped, and say so when
//! they are cut. Text can be redacted on the way out: bearer tokens, API keys (OpenAI,
//! Anthropic, AWS, GitHub, Slack, Vigil), `Authorization` and cookie headers, and
//! `password=`/`secret=`/`token=`-style assignments become `[REDACTED]`.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

use vigil_store::RunRecord;

use crate::fsutil::{inside, off_thread};
use crate::manifest::check_relative;
use crate::runs::{Harness, HarnessError};

/// Files listed in an index at most.
const INDEX_ENTRIES_MAX: usize = 10_000;
/// The largest read allowed, whatever the caller asks.
pub const READ_BYTES_MAX: u64 = 64 << 20;

/// One file of a run.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ArtifactEntry {
    /// Relative to the run folder.
    pub path: String,
    pub size_bytes: u64,
}

impl Harness {
    /// Every file of a run's folder (see [`index`]).
    pub async fn artifacts(&self, run: &RunRecord) -> Result<Vec<ArtifactEntry>, HarnessError> {
        let dir = self.run_dir(run);
        off_thread(move || index(&dir)).await
    }

    /// One file of a run's folder (see [`read`]).
    pub async fn read_artifact(
        &self,
        run: &RunRecord,
        rel: String,
        max_bytes: u64,
        redact: bool,
    ) -> Result<ArtifactRead, HarnessError> {
        let dir = self.run_dir(run);
        off_thread(move || read(&dir, &rel, max_bytes, redact)).await
    }
}

/// Lists the files of a run folder (scratch and shared space excluded), in path order.
pub fn index(dir: &Path) -> Result<Vec<ArtifactEntry>, HarnessError> {
    let mut out = Vec::new();
    collect(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.truncate(INDEX_ENTRIES_MAX);
    Ok(out)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<ArtifactEntry>) -> Result<(), HarnessError> {
    let entries = std::fs::read_dir(dir).map_err(|e| HarnessError::Io(format!("{}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() && !crate::exec::is_transient(&rel) {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            let size_bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(ArtifactEntry { path: rel.to_string_lossy().into_owned(), size_bytes });
        }
        if out.len() > INDEX_ENTRIES_MAX {
            break;
        }
    }
    Ok(())
}

/// A file read from a run.
#[derive(Clone, Debug)]
pub struct ArtifactRead {
    pub bytes: Vec<u8>,
    pub total_bytes: u64,
    pub truncated: bool,
    /// Secrets replaced (0 when redaction was not asked for or the file is not text).
    pub redactions: usize,
}

/// Reads `rel` from the run folder `dir`, at most `max_bytes`, optionally redacted.
pub fn read(dir: &Path, rel: &str, max_bytes: u64, redact: bool) -> Result<ArtifactRead, HarnessError> {
    let relative = check_relative(rel).map_err(|e| HarnessError::Invalid(format!("artifact path {e}")))?;
    if crate::exec::is_transient(&relative) {
        return Err(HarnessError::NotFound(format!("artifact {rel}")));
    }
    let path = dir.join(&relative);
    if !path.exists() {
        return Err(HarnessError::NotFound(format!("artifact {rel}")));
    }
    let resolved =
        inside(dir, &path).map_err(|_| HarnessError::Invalid(format!("artifact {rel} points outside its run")))?;
    let file = std::fs::File::open(&resolved).map_err(|e| HarnessError::Io(format!("{}: {e}", resolved.display())))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(HarnessError::Invalid(format!("artifact {rel} is not a file")));
    }
    let cap = max_bytes.min(READ_BYTES_MAX);
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes).map_err(|e| HarnessError::Io(format!("{}: {e}", resolved.display())))?;
    let truncated = total_bytes > bytes.len() as u64;
    let mut redactions = 0;
    if redact && let Ok(text) = std::str::from_utf8(&bytes) {
        let (clean, n) = redact_secrets(text);
        redactions = n;
        bytes = clean.into_bytes();
    }
    Ok(ArtifactRead { bytes, total_bytes, truncated, redactions })
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        [
            // Header values first, so their tokens are not redacted twice.
            (r"(?im)^((?:proxy-)?authorization|cookie|set-cookie|x-api-key)(\s*[:=]\s*)(.+)$", "$1$2[REDACTED]"),
            (r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", "$1 [REDACTED]"),
            (r"\bvgl_[0-9a-f]{16}_[0-9a-f]{64}\b", "[REDACTED]"),
            (r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}", "[REDACTED]"),
            (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "[REDACTED]"),
            (r"\bgh[pousr]_[A-Za-z0-9]{30,}\b", "[REDACTED]"),
            (r"\bxox[abprs]-[A-Za-z0-9-]{10,}", "[REDACTED]"),
            (
                r#"(?i)\b([a-z0-9_]*(?:password|passwd|secret|api_?key|access_?token|auth_?token|private_?key)["']?\s*[:=]\s*["']?)([^\s"',;&]{4,})"#,
                "$1[REDACTED]",
            ),
        ]
        .into_iter()
        .filter_map(|(pattern, replacement)| Regex::new(pattern).ok().map(|re| (re, replacement)))
        .collect()
    })
}

/// Replaces secrets in `text`; returns the clean text and how many were replaced.
pub fn redact_secrets(text: &str) -> (String, usize) {
    let mut out = text.to_owned();
    let mut count = 0;
    for (re, replacement) in patterns() {
        let found = re.find_iter(&out).filter(|m| !m.as_str().ends_with("[REDACTED]")).count();
        if found > 0 {
            count += found;
            out = re.replace_all(&out, *replacement).into_owned();
        }
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_counted() {
        let text = "GET /v1/models\nAuthorization: Bearer sk-proj-abcdefghijklmnopqrstuv\nCookie: session=abc123\n\
                    key vgl_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\
                    aws AKIAABCDEFGHIJKLMNOP\nconfig: {\"api_key\": \"hunter2hunter2\"}\npassword=swordfish\nharmless=value\n";
        let (clean, n) = redact_secrets(text);
        for secret in ["sk-proj-abc", "session=abc123", "vgl_0123", "AKIAABCD", "hunter2", "swordfish"] {
            assert!(!clean.contains(secret), "{secret} leaked:\n{clean}");
        }
        assert!(clean.contains("harmless=value") && clean.contains("GET /v1/models"), "{clean}");
        assert!(n >= 6, "{n}");
        assert_eq!(redact_secrets("nothing to see").1, 0);
    }

    #[test]
    fn reads_stay_inside_the_run_and_are_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        std::fs::create_dir_all(run.join("plugins/p/scratch")).expect("mkdir");
        std::fs::create_dir_all(run.join("plugins/p/share")).expect("mkdir");
        std::fs::write(run.join("report.md"), "x".repeat(100)).expect("write");
        std::fs::write(run.join("plugins/p/scratch/tmp"), "scratch").expect("write");
        std::fs::write(run.join("plugins/p/share/table.snapshot"), "typed table").expect("write");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), run.join("escape")).expect("symlink");

        let read = read(&run, "report.md", 10, false).expect("read");
        assert_eq!((read.bytes.len(), read.total_bytes, read.truncated), (10, 100, true));
        assert!(matches!(super::read(&run, "../secret", 10, false), Err(HarnessError::Invalid(_))));
        assert!(matches!(super::read(&run, "/etc/passwd", 10, false), Err(HarnessError::Invalid(_))));
        assert!(matches!(super::read(&run, "escape", 10, false), Err(HarnessError::Invalid(_))));
        assert!(matches!(super::read(&run, "plugins/p/scratch/tmp", 10, false), Err(HarnessError::NotFound(_))));
        let shared = super::read(&run, "plugins/p/share/table.snapshot", 10, false);
        assert!(matches!(shared, Err(HarnessError::NotFound(_))), "a run in progress never serves shared files");
        let listed: Vec<String> = index(&run).expect("index").into_iter().map(|e| e.path).collect();
        assert_eq!(listed, ["report.md"], "no scratch, no shared files, no links");
    }
}
