//! Uploads: content a user handed Vigil, stored once per distinct sha256.
//!
//! Uploading content that already exists does not create a second upload: the attempt is
//! recorded on its own (who, when, under which file name) and points at the existing
//! upload, so a user can be told plainly that their content matched one from earlier.

use rusqlite::{OptionalExtension, Row, params};
use vigil_core::id::UploadId;
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::time::Timestamp;

use crate::audit::{NewAuditEntry, append_in};
use crate::{Result, Store, StoreError};

/// Longest file name kept for an upload (longer names are cut, on a character boundary).
pub const FILE_NAME_LEN_MAX: usize = 255;

/// A stored upload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct UploadRecord {
    pub id: UploadId,
    pub sha256: String,
    pub size_bytes: u64,
    /// The name it was first uploaded under.
    pub file_name: String,
    pub format: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// What a new upload attempt brings.
#[derive(Clone, Debug)]
pub struct NewUpload {
    pub sha256: String,
    pub size_bytes: u64,
    pub file_name: String,
    pub format: String,
    pub by: String,
}

/// One upload attempt and the upload it produced or matched.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct UploadAttempt {
    pub attempt_id: String,
    pub at: Timestamp,
    /// The content already existed: `upload` is the earlier upload, reused.
    pub reused: bool,
    pub upload: UploadRecord,
}

const COLUMNS: &str = "id, sha256, size_bytes, file_name, format, created_at, created_by";

fn from_row(row: &Row<'_>) -> rusqlite::Result<UploadRecord> {
    Ok(UploadRecord {
        id: UploadId::new(row.get::<_, String>(0)?),
        sha256: row.get(1)?,
        size_bytes: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        file_name: row.get(3)?,
        format: row.get(4)?,
        created_at: Timestamp::from_unix_micros(row.get(5)?),
        created_by: row.get(6)?,
    })
}

/// Cuts a file name to [`FILE_NAME_LEN_MAX`] bytes without splitting a character, and keeps
/// only its last path component (a name is not a path).
pub fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let base = if base.is_empty() || base == "." || base == ".." { "upload" } else { base };
    let mut end = base.len().min(FILE_NAME_LEN_MAX);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    base[..end].chars().filter(|c| !c.is_control()).collect()
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl Store {
    /// Records an upload attempt: a new upload for new content, or a reuse of the upload
    /// that holds the same sha256. Appends `audit` in the same transaction.
    pub fn record_upload(&self, new: &NewUpload, audit: Option<&NewAuditEntry>) -> Result<UploadAttempt> {
        let file_name = clean_file_name(&new.file_name);
        let now = Timestamp::now();
        let size = i64::try_from(new.size_bytes).map_err(|_| StoreError::Invalid("upload too large".into()))?;
        self.write(|tx| {
            let existing = tx
                .query_row(&format!("SELECT {COLUMNS} FROM uploads WHERE sha256 = ?1"), [&new.sha256], from_row)
                .optional()?;
            let (upload, reused) = match existing {
                Some(upload) => (upload, true),
                None => {
                    let upload = UploadRecord {
                        id: UploadId::new(new_id("upl")),
                        sha256: new.sha256.to_owned(),
                        size_bytes: new.size_bytes,
                        file_name: file_name.clone(),
                        format: new.format.to_owned(),
                        created_at: now,
                        created_by: new.by.to_owned(),
                    };
                    tx.execute(
                        &format!("INSERT INTO uploads ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                        params![
                            upload.id.as_str(),
                            upload.sha256,
                            size,
                            upload.file_name,
                            upload.format,
                            now.as_unix_micros(),
                            upload.created_by
                        ],
                    )?;
                    (upload, false)
                }
            };
            let attempt_id = new_id("att");
            tx.execute(
                "INSERT INTO upload_attempts (id, upload_id, file_name, at, by, reused) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![attempt_id, upload.id.as_str(), file_name, now.as_unix_micros(), new.by, reused],
            )?;
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            Ok(UploadAttempt { attempt_id, at: now, reused, upload })
        })
    }

    pub fn get_upload(&self, id: &str) -> Result<UploadRecord> {
        self.read(|conn| {
            conn.query_row(&format!("SELECT {COLUMNS} FROM uploads WHERE id = ?1"), [id], from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("upload {id}")))
        })
    }

    /// How many times an upload's content was sent (its first upload included).
    pub fn upload_attempt_count(&self, id: &str) -> Result<u64> {
        self.read(|conn| {
            let n: i64 =
                conn.query_row("SELECT COUNT(*) FROM upload_attempts WHERE upload_id = ?1", [id], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// One page of uploads, newest first.
    pub fn list_uploads_page(&self, page: PageRequest) -> Result<(Vec<UploadRecord>, Option<Cursor>)> {
        self.read(|conn| {
            let after = if page.after.is_some() { "WHERE rowid < ?" } else { "" };
            let limit = page.fetch_limit();
            let sql = format!("SELECT {COLUMNS}, rowid FROM uploads {after} ORDER BY rowid DESC LIMIT {limit}");
            let mut stmt = conn.prepare_cached(&sql)?;
            let values: Vec<i64> = page.after.map(Cursor::position).into_iter().collect();
            let rows =
                stmt.query_map(rusqlite::params_from_iter(values), |row| Ok((from_row(row)?, row.get::<_, i64>(7)?)))?;
            let (items, next) = page.finish(rows.collect::<rusqlite::Result<Vec<_>>>()?, |(_, rowid)| *rowid);
            Ok((items.into_iter().map(|(u, _)| u).collect(), next))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn new_upload(sha: &str, name: &str) -> NewUpload {
        NewUpload {
            sha256: sha.into(),
            size_bytes: 10,
            file_name: name.into(),
            format: "csv".into(),
            by: "test".into(),
        }
    }

    #[test]
    fn same_content_reuses_the_first_upload_and_records_every_attempt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("v.db"), StoreOptions::default()).expect("open");
        let first = store.record_upload(&new_upload("aa", "orders.csv"), None).expect("first");
        assert!(!first.reused);
        let second = store.record_upload(&new_upload("aa", "orders (copy).csv"), None).expect("second");
        assert!(second.reused);
        assert_eq!(second.upload, first.upload);
        assert_ne!(second.attempt_id, first.attempt_id);
        assert_eq!(store.upload_attempt_count(first.upload.id.as_str()).expect("count"), 2);
        let other = store.record_upload(&new_upload("bb", "other.csv"), None).expect("other");
        assert!(!other.reused);
        let (page, _) = store.list_uploads_page(PageRequest::new(None, None).expect("page")).expect("list");
        assert_eq!(
            page.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            [other.upload.id.as_str(), first.upload.id.as_str()]
        );
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\data\\orders.csv"), "orders.csv");
        assert_eq!(clean_file_name(".."), "upload");
        assert_eq!(clean_file_name("a\u{7}b"), "ab");
        assert_eq!(clean_file_name(&"é".repeat(200)).len(), 254);
    }
}
