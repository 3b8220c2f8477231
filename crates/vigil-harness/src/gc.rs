//! Retention: removing old runs, and the uploads and blobs nothing uses any more.
//!
//! A run is removed when it is finished, not pinned, and older than the cutoff; its rows
//! go in one transaction with a tombstone and an audit entry, then its folder. An upload
//! older than the cutoff that no remaining run uses goes the same way, and its blob with
//! it; a blob no upload holds (left by an interrupted upload) is removed once older than
//! the cutoff. Pinned runs, and everything they use, are never removed.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use vigil_core::digest::Sha256Digest;
use vigil_core::time::Timestamp;
use vigil_store::{CollectableUpload, NewAuditEntry};

use crate::fsutil::off_thread;
use crate::runs::{Harness, HarnessError};

/// What a collection removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub cutoff: String,
    pub runs_removed: Vec<String>,
    pub uploads_removed: Vec<String>,
    pub blobs_removed: Vec<String>,
    pub bytes_freed: u64,
    pub pinned_runs_kept: u64,
    /// Partial files of blob writes whose writer died (a crash, `kill -9`), whatever their
    /// age; their bytes count in `bytes_freed`.
    pub partial_files: vigil_store::StaleTemps,
}

/// Parses an age such as `30d`, `12h`, `90m` or `45s`: one to six digits and a unit.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = Some(number)
        .filter(|n| (1..=6).contains(&n.len()))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{text:?} is not an age like 30d, 12h, 90m or 45s"))?;
    let seconds = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => None,
    };
    seconds.map(Duration::from_secs).ok_or_else(|| format!("{text:?} is not an age like 30d, 12h, 90m or 45s"))
}

/// Removes what is older than `older_than` and unpinned. `audit` builds the audit entry
/// for each removal from its target (`run:<id>`, `upload:<id>`).
pub async fn collect(
    harness: &Harness,
    older_than: Duration,
    by: &str,
    dry_run: bool,
    audit: &(dyn Fn(&str) -> NewAuditEntry + Sync),
) -> Result<GcReport, HarnessError> {
    let (store, blobs) = (harness.store(), harness.blobs());
    let now = Timestamp::now();
    let cutoff = Timestamp::from_unix_micros(
        now.as_unix_micros().saturating_sub(i64::try_from(older_than.as_micros()).unwrap_or(i64::MAX)),
    );
    let reason = format!("older than the retention cutoff {} and not pinned", cutoff.to_rfc3339());
    let mut report = GcReport {
        dry_run,
        cutoff: cutoff.to_rfc3339(),
        pinned_runs_kept: store.pinned_run_count().await?,
        ..GcReport::default()
    };

    for run in store.collectable_runs(cutoff).await? {
        if !dry_run {
            let entry = audit(&format!("run:{}", run.id));
            store.remove_run(run.id.clone(), by.to_owned(), reason.clone(), Some(entry)).await?;
            let dir = harness.run_dir(&run);
            off_thread(move || match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(HarnessError::Io(format!("removing {}: {e}", dir.display())))
                }
                _ => Ok(()),
            })
            .await?;
        }
        report.runs_removed.push(run.id.into());
    }
    for upload in store.collectable_uploads(cutoff).await? {
        let CollectableUpload { id, sha256: sha, size_bytes: size } = upload;
        // In a dry run the runs above are still there; only count uploads they do not use.
        if dry_run {
            report.uploads_removed.push(id.into());
            report.blobs_removed.push(sha);
            report.bytes_freed += size;
            continue;
        }
        let entry = audit(&format!("upload:{id}"));
        store.remove_upload(id.clone(), by.to_owned(), reason.clone(), Some(entry)).await?;
        report.uploads_removed.push(id.into());
        if let Ok(digest) = sha.parse::<Sha256Digest>()
            && !store.blob_in_use(sha.clone()).await?
        {
            report.bytes_freed += blobs.remove(digest).await?;
            store.tombstone_blob(sha.clone(), size, by.to_owned(), "its upload was removed".into()).await?;
            report.blobs_removed.push(sha);
        }
    }
    let blob_cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
    for (digest, size, modified) in blobs.list().await? {
        let sha = digest.to_string();
        if modified >= blob_cutoff || report.blobs_removed.contains(&sha) || store.blob_in_use(sha.clone()).await? {
            continue;
        }
        if !dry_run {
            blobs.remove(digest).await?;
            store.tombstone_blob(sha.clone(), size, by.to_owned(), "no upload holds it".into()).await?;
        }
        report.bytes_freed += size;
        report.blobs_removed.push(sha);
    }
    report.partial_files = blobs.remove_stale_temps(dry_run).await?;
    report.bytes_freed += report.partial_files.bytes;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert!(parse_age("30").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("5w").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
        assert_eq!(parse_age("999999d"), Ok(Duration::from_secs(999_999 * 86_400)));
        assert!(parse_age("1000000d").is_err(), "seven digits, as the API's pattern says");
        assert!(parse_age(" 30d").is_err());
    }
}
