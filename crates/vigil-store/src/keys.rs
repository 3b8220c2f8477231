//! API keys. A key is `vgl_<id>_<secret>`; only a random salt and `sha256(salt ‖ secret)`
//! are stored, and presented secrets are compared in constant time. Keys carry 256 random
//! bits, so a fast salted hash is enough: there is nothing to brute-force that a slow
//! password hash would protect.

use rusqlite::{OptionalExtension, Row, params};
use subtle::ConstantTimeEq;
use vigil_core::digest::Sha256Hasher;
use vigil_core::id::{API_KEY_SECRET_HEX_LEN, KeyId, PresentedKey};
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::scope::Scope;
use vigil_core::time::Timestamp;

use crate::audit::{NewAuditEntry, append_in};
use crate::{Result, Store, StoreError};

/// Longest key name accepted.
pub const KEY_NAME_LEN_MAX: usize = 64;
const SALT_BYTES: usize = 16;

/// A key as listed: everything but the secret, which is never stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct KeyRecord {
    pub id: KeyId,
    pub name: String,
    pub scope: Scope,
    pub created_at: Timestamp,
    /// Who created it: `cli`, `local`, or the id of the admin key used.
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
}

/// A freshly created key. `secret` is the full key text, shown to the user exactly once.
#[derive(Clone, serde::Serialize, schemars::JsonSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub record: KeyRecord,
    pub secret: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey").field("record", &self.record).field("secret", &"<redacted>").finish()
    }
}

/// An active key with what is needed to verify a presented secret, for callers that keep
/// keys in memory (the server does, so authenticating a request touches no database).
#[derive(Clone)]
pub struct ActiveKey {
    pub record: KeyRecord,
    salt: Vec<u8>,
    secret_hash: Vec<u8>,
}

impl std::fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveKey").field("record", &self.record).finish_non_exhaustive()
    }
}

impl ActiveKey {
    /// Whether `secret` is this key's secret. Constant-time in the secret's content.
    pub fn verify(&self, secret: &str) -> bool {
        bool::from(hash_secret(&self.salt, secret).ct_eq(self.secret_hash.as_slice()))
    }
}

/// Changes whenever a key is created or revoked; cheap to read, so a cache of
/// [`ActiveKey`]s can poll it and reload only when needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeysVersion {
    rows: i64,
    max_rowid: i64,
    revoked: i64,
    last_revoked_at: Option<i64>,
}

/// Checks a key name: 1 to 64 characters of letters, digits, space, `.`, `_` or `-`.
pub fn validate_key_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'));
    if name.trim().is_empty() || name.len() > KEY_NAME_LEN_MAX || !ok_chars {
        return Err(StoreError::Invalid(format!(
            "key name must be 1 to {KEY_NAME_LEN_MAX} characters of letters, digits, space, '.', '_' or '-'"
        )));
    }
    Ok(())
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        context: "reading the system random source".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(bytes)
}

fn hash_secret(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut hasher = Sha256Hasher::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    *hasher.finish().as_bytes()
}

fn parse_id(text: &str) -> rusqlite::Result<KeyId> {
    text.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn parse_scope(text: &str) -> rusqlite::Result<Scope> {
    text.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))
}

const KEY_COLUMNS: &str = "id, name, scope, created_at, created_by, revoked_at";

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        id: parse_id(&row.get::<_, String>(0)?)?,
        name: row.get(1)?,
        scope: parse_scope(&row.get::<_, String>(2)?)?,
        created_at: Timestamp::from_unix_micros(row.get(3)?),
        created_by: row.get(4)?,
        revoked_at: row.get::<_, Option<i64>>(5)?.map(Timestamp::from_unix_micros),
    })
}

/// The SQL and parameters for one page of keys: one statement per filter combination with
/// the limit in its text, so SQLite compiles it once (see `audit::list_sql`).
fn list_page_sql(include_revoked: bool, page: PageRequest) -> (String, Vec<i64>) {
    let active = if include_revoked { "" } else { "AND revoked_at IS NULL" };
    let after = if page.after.is_some() { "AND rowid < ?" } else { "" };
    let limit = page.fetch_limit();
    let sql =
        format!("SELECT {KEY_COLUMNS}, rowid FROM api_keys WHERE 1 {active} {after} ORDER BY rowid DESC LIMIT {limit}");
    (sql, page.after.map(Cursor::position).into_iter().collect())
}

impl Store {
    /// Creates a key and, when given, appends `audit` in the same transaction.
    pub fn create_key(
        &self,
        name: &str,
        scope: Scope,
        created_by: &str,
        audit: Option<&NewAuditEntry>,
    ) -> Result<CreatedKey> {
        validate_key_name(name)?;
        let id = KeyId::from_bytes(random::<8>()?);
        let salt = random::<SALT_BYTES>()?;
        let secret_hex = hex::encode(random::<32>()?);
        debug_assert_eq!(secret_hex.len(), API_KEY_SECRET_HEX_LEN);
        let record = KeyRecord {
            id,
            name: name.to_owned(),
            scope,
            created_at: Timestamp::now(),
            created_by: created_by.to_owned(),
            revoked_at: None,
        };
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO api_keys (id, name, scope, salt, secret_hash, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT DO NOTHING",
                params![
                    id.to_string(),
                    name,
                    scope.as_str(),
                    &salt[..],
                    &hash_secret(&salt, &secret_hex)[..],
                    record.created_at.as_unix_micros(),
                    created_by,
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("an active key named {name:?} already exists")));
            }
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            Ok(())
        })?;
        Ok(CreatedKey { secret: PresentedKey::format(id, &secret_hex), record })
    }

    /// Lists keys, newest first, optionally including revoked ones.
    pub fn list_keys(&self, include_revoked: bool) -> Result<Vec<KeyRecord>> {
        self.read(|conn| {
            let sql = format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 OR revoked_at IS NULL ORDER BY created_at DESC, id"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([include_revoked], key_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// One page of keys, newest first.
    pub fn list_keys_page(&self, include_revoked: bool, page: PageRequest) -> Result<(Vec<KeyRecord>, Option<Cursor>)> {
        self.read(|conn| {
            let (sql, values) = list_page_sql(include_revoked, page);
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values), |row| Ok((key_from_row(row)?, row.get::<_, i64>(6)?)))?;
            let (keys, next) = page.finish(rows.collect::<rusqlite::Result<Vec<_>>>()?, |(_, rowid)| *rowid);
            Ok((keys.into_iter().map(|(key, _)| key).collect(), next))
        })
    }

    pub fn get_key(&self, id: KeyId) -> Result<KeyRecord> {
        self.read(|conn| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1");
            conn.query_row(&sql, [id.to_string()], key_from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("key {id}")))
        })
    }

    /// Revokes a key. Refuses to revoke the last active admin key, which would lock every
    /// administrator out of a production deployment.
    pub fn revoke_key(&self, id: KeyId, audit: Option<&NewAuditEntry>) -> Result<KeyRecord> {
        self.write(|tx| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1");
            let key = tx
                .query_row(&sql, [id.to_string()], key_from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("key {id}")))?;
            if key.revoked_at.is_some() {
                return Err(StoreError::Conflict(format!("key {id} is already revoked")));
            }
            if key.scope == Scope::Admin {
                let admins: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM api_keys WHERE scope = 'admin' AND revoked_at IS NULL",
                    [],
                    |r| r.get(0),
                )?;
                if admins <= 1 {
                    return Err(StoreError::Conflict(format!(
                        "key {id} is the last active admin key; create another admin key before revoking it"
                    )));
                }
            }
            let now = Timestamp::now();
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1",
                params![id.to_string(), now.as_unix_micros()],
            )?;
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            Ok(KeyRecord { revoked_at: Some(now), ..key })
        })
    }

    /// Whether any active admin key exists (production mode needs one to start).
    pub fn has_active_admin_key(&self) -> Result<bool> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM api_keys WHERE scope = 'admin' AND revoked_at IS NULL)",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// Every active key with its salt and hash.
    pub fn active_keys(&self) -> Result<Vec<ActiveKey>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS}, salt, secret_hash FROM api_keys WHERE revoked_at IS NULL"
            ))?;
            let rows = stmt.query_map([], |row| {
                Ok(ActiveKey { record: key_from_row(row)?, salt: row.get(6)?, secret_hash: row.get(7)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The current [`KeysVersion`].
    pub fn keys_version(&self) -> Result<KeysVersion> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(MAX(rowid), 0), COUNT(revoked_at), MAX(revoked_at) FROM api_keys",
                )?
                .query_row([], |r| {
                    Ok(KeysVersion {
                        rows: r.get(0)?,
                        max_rowid: r.get(1)?,
                        revoked: r.get(2)?,
                        last_revoked_at: r.get(3)?,
                    })
                })?)
        })
    }

    /// Returns the active key matching `presented`, or `None` if it is unknown, revoked or
    /// the secret does not match.
    pub fn authenticate(&self, presented: PresentedKey<'_>) -> Result<Option<KeyRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS}, salt, secret_hash FROM api_keys WHERE id = ?1 AND revoked_at IS NULL"
            ))?;
            let found = stmt
                .query_row([presented.id.to_string()], |row| {
                    Ok(ActiveKey { record: key_from_row(row)?, salt: row.get(6)?, secret_hash: row.get(7)? })
                })
                .optional()?;
            Ok(found.filter(|key| key.verify(presented.secret)).map(|key| key.record))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::temp_store as store;

    #[test]
    fn create_authenticate_revoke() {
        let (_dir, store) = store();
        let admin = store.create_key("root", Scope::Admin, "cli", None).expect("admin");
        let key = store.create_key("reader", Scope::Read, "cli", None).expect("create");
        let presented = PresentedKey::parse(&key.secret).expect("well formed");
        assert_eq!(store.authenticate(presented).expect("auth").map(|k| k.scope), Some(Scope::Read));

        // A wrong secret for a real id fails.
        let wrong = format!("vgl_{}_{}", key.record.id, "0".repeat(64));
        assert_eq!(store.authenticate(PresentedKey::parse(&wrong).expect("parse")).expect("auth"), None);

        let before = store.keys_version().expect("version");
        store.revoke_key(key.record.id, None).expect("revoke");
        assert_ne!(store.keys_version().expect("version"), before, "revocation changes the version");
        assert_eq!(store.active_keys().expect("active").len(), 1);
        assert_eq!(store.authenticate(presented).expect("auth"), None);
        assert!(matches!(store.revoke_key(key.record.id, None), Err(StoreError::Conflict(_))));
        assert!(matches!(store.revoke_key(admin.record.id, None), Err(StoreError::Conflict(_))));
    }

    #[test]
    fn list_statement_compiles_once() {
        let (_dir, store) = store();
        for i in 0..4 {
            store.create_key(&format!("k{i}"), Scope::Read, "cli", None).expect("create");
        }
        let reprepared = store
            .read(|conn| {
                let mut text = String::new();
                for n in 2..=4 {
                    let (sql, values) = list_page_sql(false, PageRequest { after: Some(Cursor::after(n)), limit: 1 });
                    conn.prepare_cached(&sql)?
                        .query_map(rusqlite::params_from_iter(values), key_from_row)?
                        .for_each(drop);
                    text = sql;
                }
                Ok(conn.prepare_cached(&text)?.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .expect("run");
        assert_eq!(reprepared, 0);
        let page = PageRequest { after: None, limit: 3 };
        let (first, next) = store.list_keys_page(false, page).expect("page");
        let (second, _) = store.list_keys_page(false, PageRequest { after: next, ..page }).expect("page");
        let names: Vec<_> = first.iter().chain(&second).map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["k3", "k2", "k1", "k0"]);
    }

    #[test]
    fn secret_is_not_stored() {
        let (_dir, store) = store();
        let key = store.create_key("k", Scope::Write, "cli", None).expect("create");
        let secret_part = key.secret.rsplit('_').next().expect("secret");
        let raw = std::fs::read(store.path()).expect("read db");
        let wal = std::fs::read(store.path().with_extension("db-wal")).unwrap_or_default();
        for bytes in [raw, wal] {
            assert!(!bytes.windows(secret_part.len()).any(|w| w == secret_part.as_bytes()));
        }
    }

    #[test]
    fn active_names_are_unique_and_names_validated() {
        let (_dir, store) = store();
        store.create_key("ci", Scope::Read, "cli", None).expect("first");
        assert!(matches!(store.create_key("ci", Scope::Read, "cli", None), Err(StoreError::Conflict(_))));
        assert!(matches!(store.create_key("", Scope::Read, "cli", None), Err(StoreError::Invalid(_))));
        assert!(matches!(store.create_key("a/b", Scope::Read, "cli", None), Err(StoreError::Invalid(_))));
    }
}
