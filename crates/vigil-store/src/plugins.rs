//! Installed plugins: each install is a content-addressed bundle with the permissions it
//! declares; per plugin, one install is active (and enabled or not) and one is kept to roll
//! back to. An install stays disabled until its permissions are approved; every change is
//! written with its audit entry.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;
use vigil_core::time::Timestamp;

use crate::audit::{NewAuditEntry, append_in};
use crate::{Result, Store, StoreError};

/// One installed bundle.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct PluginInstall {
    pub seq: i64,
    pub plugin_id: String,
    pub version: String,
    pub bundle_sha256: String,
    pub permissions: Value,
    pub installed_at: Timestamp,
    pub installed_by: String,
    pub approved_at: Option<Timestamp>,
    pub approved_by: Option<String>,
}

/// A plugin's active install and state.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct InstalledPlugin {
    pub active: PluginInstall,
    pub enabled: bool,
    pub previous: Option<PluginInstall>,
}

const COLUMNS: &str =
    "seq, plugin_id, version, bundle_sha256, permissions, installed_at, installed_by, approved_at, approved_by";

fn install_from_row(row: &Row<'_>) -> rusqlite::Result<PluginInstall> {
    let permissions: String = row.get(4)?;
    Ok(PluginInstall {
        seq: row.get(0)?,
        plugin_id: row.get(1)?,
        version: row.get(2)?,
        bundle_sha256: row.get(3)?,
        permissions: serde_json::from_str(&permissions)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e)))?,
        installed_at: Timestamp::from_unix_micros(row.get(5)?),
        installed_by: row.get(6)?,
        approved_at: row.get::<_, Option<i64>>(7)?.map(Timestamp::from_unix_micros),
        approved_by: row.get(8)?,
    })
}

fn install_by_seq(conn: &rusqlite::Connection, seq: i64) -> Result<PluginInstall> {
    Ok(conn.query_row(&format!("SELECT {COLUMNS} FROM plugin_installs WHERE seq = ?1"), [seq], install_from_row)?)
}

fn state_in(conn: &rusqlite::Connection, plugin_id: &str) -> Result<Option<InstalledPlugin>> {
    let row: Option<(i64, Option<i64>, bool)> = conn
        .query_row(
            "SELECT active_install, previous_install, enabled FROM plugin_state WHERE plugin_id = ?1",
            [plugin_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((active, previous, enabled)) = row else { return Ok(None) };
    Ok(Some(InstalledPlugin {
        active: install_by_seq(conn, active)?,
        enabled,
        previous: previous.map(|p| install_by_seq(conn, p)).transpose()?,
    }))
}

impl Store {
    /// Records an install and makes it the active one (the one it replaces is kept for
    /// rollback). A bundle whose permissions an earlier install of the same plugin had
    /// approved is approved again and keeps the plugin's enabled state; otherwise the
    /// plugin is disabled until the new permissions are approved.
    pub fn record_install(
        &self,
        plugin_id: &str,
        version: &str,
        bundle_sha256: &str,
        permissions: &Value,
        by: &str,
        audit: Option<&NewAuditEntry>,
    ) -> Result<InstalledPlugin> {
        let now = Timestamp::now().as_unix_micros();
        self.write(|tx| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM plugin_installs WHERE plugin_id = ?1 AND bundle_sha256 = ?2",
                    params![plugin_id, bundle_sha256],
                    |r| r.get(0),
                )
                .optional()?;
            let seq = match existing {
                Some(seq) => seq,
                None => {
                    let approved: Option<(i64, String)> = tx
                        .query_row(
                            "SELECT approved_at, approved_by FROM plugin_installs WHERE plugin_id = ?1 AND permissions = ?2
                             AND approved_at IS NOT NULL ORDER BY seq DESC LIMIT 1",
                            params![plugin_id, permissions.to_string()],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?;
                    tx.execute(
                        &format!("INSERT INTO plugin_installs ({COLUMNS}) VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                        params![
                            plugin_id,
                            version,
                            bundle_sha256,
                            permissions.to_string(),
                            now,
                            by,
                            approved.as_ref().map(|a| a.0),
                            approved.as_ref().map(|a| a.1.clone())
                        ],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            let install = install_by_seq(tx, seq)?;
            match state_in(tx, plugin_id)? {
                None => {
                    tx.execute(
                        "INSERT INTO plugin_state (plugin_id, active_install, previous_install, enabled) VALUES (?1, ?2, NULL, 0)",
                        params![plugin_id, seq],
                    )?;
                }
                Some(state) if state.active.seq == seq => {}
                Some(state) => {
                    let enabled = state.enabled && install.approved_at.is_some();
                    tx.execute(
                        "UPDATE plugin_state SET active_install = ?2, previous_install = ?3, enabled = ?4 WHERE plugin_id = ?1",
                        params![plugin_id, seq, state.active.seq, enabled],
                    )?;
                }
            }
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            state_in(tx, plugin_id)?.ok_or_else(|| StoreError::NotFound(format!("plugin {plugin_id}")))
        })
    }

    /// Approves the permissions of a plugin's active install.
    pub fn approve_plugin(&self, plugin_id: &str, by: &str, audit: Option<&NewAuditEntry>) -> Result<InstalledPlugin> {
        self.change_plugin(plugin_id, audit, |tx, state| {
            tx.execute(
                "UPDATE plugin_installs SET approved_at = ?2, approved_by = ?3 WHERE seq = ?1",
                params![state.active.seq, Timestamp::now().as_unix_micros(), by],
            )?;
            Ok(())
        })
    }

    /// Enables or disables a plugin. Enabling needs approved permissions.
    pub fn set_plugin_enabled(
        &self,
        plugin_id: &str,
        enabled: bool,
        audit: Option<&NewAuditEntry>,
    ) -> Result<InstalledPlugin> {
        self.change_plugin(plugin_id, audit, |tx, state| {
            if enabled && state.active.approved_at.is_none() {
                return Err(StoreError::Conflict(format!(
                    "plugin {plugin_id} {} asks for permissions {} that nobody has approved; approve them first",
                    state.active.version, state.active.permissions
                )));
            }
            tx.execute("UPDATE plugin_state SET enabled = ?2 WHERE plugin_id = ?1", params![plugin_id, enabled])?;
            Ok(())
        })
    }

    /// Makes the previous install active again (and the current one the previous). The
    /// plugin stays enabled only if the install rolled back to is approved.
    pub fn rollback_plugin(&self, plugin_id: &str, audit: Option<&NewAuditEntry>) -> Result<InstalledPlugin> {
        self.change_plugin(plugin_id, audit, |tx, state| {
            let previous = state.previous.as_ref().ok_or_else(|| {
                StoreError::Conflict(format!("plugin {plugin_id} has no earlier install to roll back to"))
            })?;
            let enabled = state.enabled && previous.approved_at.is_some();
            tx.execute(
                "UPDATE plugin_state SET active_install = ?2, previous_install = ?3, enabled = ?4 WHERE plugin_id = ?1",
                params![plugin_id, previous.seq, state.active.seq, enabled],
            )?;
            Ok(())
        })
    }

    fn change_plugin(
        &self,
        plugin_id: &str,
        audit: Option<&NewAuditEntry>,
        change: impl FnOnce(&rusqlite::Transaction<'_>, &InstalledPlugin) -> Result<()>,
    ) -> Result<InstalledPlugin> {
        self.write(|tx| {
            let state = state_in(tx, plugin_id)?
                .ok_or_else(|| StoreError::NotFound(format!("installed plugin {plugin_id}")))?;
            change(tx, &state)?;
            if let Some(entry) = audit {
                append_in(tx, entry)?;
            }
            state_in(tx, plugin_id)?.ok_or_else(|| StoreError::NotFound(format!("installed plugin {plugin_id}")))
        })
    }

    /// Every installed plugin's state.
    pub fn installed_plugins(&self) -> Result<Vec<InstalledPlugin>> {
        self.read(|conn| {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT plugin_id FROM plugin_state ORDER BY plugin_id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            ids.iter()
                .map(|id| state_in(conn, id).map(|s| s.ok_or_else(|| StoreError::NotFound(id.clone())))?)
                .collect()
        })
    }
}

impl Store {
    /// Changes whenever a plugin is installed, approved, enabled, disabled or rolled back;
    /// cheap to read, so a cached registry can tell when to reload.
    pub fn plugins_version(&self) -> Result<String> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT (SELECT COUNT(*) || ':' || COALESCE(MAX(seq), 0) || ':' || COUNT(approved_at) FROM plugin_installs)
                        || '|' || (SELECT COALESCE(group_concat(plugin_id || '=' || active_install || '/' || enabled, ','), '')
                                   FROM (SELECT * FROM plugin_state ORDER BY plugin_id))",
                [],
                |r| r.get(0),
            )?)
        })
    }
}
