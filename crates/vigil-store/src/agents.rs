//! Discovery: what Vigil has learned about each agent from its calls — when it was first
//! and last seen, how many calls and errors, which models, from which addresses — plus
//! gateway statistics over a time window.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{OptionalExtension, Row, params};
use vigil_core::id::AgentId;
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::time::Timestamp;
use vigil_core::vitals::{CallOutcome, Vital};

use crate::{Result, Store, StoreError};

/// Most distinct models remembered per agent.
pub const AGENT_MODELS_MAX: usize = 64;
/// Most distinct client addresses remembered per agent.
pub const AGENT_IPS_MAX: usize = 32;

/// One discovered agent.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct AgentRecord {
    #[serde(skip)]
    pub seq: i64,
    pub agent_id: AgentId,
    pub agent_type: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub calls: u64,
    /// Calls that did not end `ok`.
    pub errors: u64,
    pub models: Vec<String>,
    pub ips: Vec<String>,
}

const COLUMNS: &str = "seq, agent_id, agent_type, first_seen, last_seen, calls, errors, models, ips";

fn from_row(row: &Row<'_>) -> rusqlite::Result<AgentRecord> {
    let list = |col: usize| -> rusqlite::Result<Vec<String>> {
        let text: String = row.get(col)?;
        serde_json::from_str(&text)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e)))
    };
    Ok(AgentRecord {
        seq: row.get(0)?,
        agent_id: AgentId::new(row.get::<_, String>(1)?),
        agent_type: row.get(2)?,
        first_seen: Timestamp::from_unix_micros(row.get(3)?),
        last_seen: Timestamp::from_unix_micros(row.get(4)?),
        calls: row.get::<_, i64>(5)?.max(0) as u64,
        errors: row.get::<_, i64>(6)?.max(0) as u64,
        models: list(7)?,
        ips: list(8)?,
    })
}

fn capped_union(existing: Vec<String>, new: impl IntoIterator<Item = String>, cap: usize) -> Vec<String> {
    let mut set: BTreeSet<String> = existing.into_iter().collect();
    for item in new {
        if set.len() >= cap {
            break;
        }
        set.insert(item);
    }
    set.into_iter().collect()
}

/// Folds a batch of calls into the agents table, inside the batch's transaction.
pub(crate) fn record_calls(tx: &rusqlite::Transaction<'_>, vitals: &[Vital]) -> Result<()> {
    let mut by_agent: BTreeMap<&str, Vec<&Vital>> = BTreeMap::new();
    for v in vitals {
        by_agent.entry(v.agent_id.as_str()).or_default().push(v);
    }
    for (agent_id, calls) in by_agent {
        let existing = tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM agents WHERE agent_id = ?1"))?
            .query_row([agent_id], from_row)
            .optional()?;
        let first = calls.iter().map(|v| v.at).min().unwrap_or_else(Timestamp::now);
        let last = calls.iter().map(|v| v.at).max().unwrap_or_else(Timestamp::now);
        let known_type = calls.iter().map(|v| v.agent_type.as_str()).rfind(|t| *t != "unknown").unwrap_or("unknown");
        let errors = calls.iter().filter(|v| v.outcome != CallOutcome::Ok).count() as u64;
        let models = calls.iter().filter_map(|v| v.model_requested.clone());
        let ips = calls.iter().filter_map(|v| v.client_ip.clone());
        let merged = match existing {
            Some(old) => AgentRecord {
                agent_type: if known_type == "unknown" { old.agent_type.clone() } else { known_type.to_owned() },
                first_seen: old.first_seen.min(first),
                last_seen: old.last_seen.max(last),
                calls: old.calls + calls.len() as u64,
                errors: old.errors + errors,
                models: capped_union(old.models.clone(), models, AGENT_MODELS_MAX),
                ips: capped_union(old.ips.clone(), ips, AGENT_IPS_MAX),
                ..old
            },
            None => AgentRecord {
                seq: 0,
                agent_id: AgentId::new(agent_id),
                agent_type: known_type.to_owned(),
                first_seen: first,
                last_seen: last,
                calls: calls.len() as u64,
                errors,
                models: capped_union(Vec::new(), models, AGENT_MODELS_MAX),
                ips: capped_union(Vec::new(), ips, AGENT_IPS_MAX),
            },
        };
        let json = |list: &Vec<String>| serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned());
        tx.prepare_cached(
            "INSERT INTO agents (agent_id, agent_type, first_seen, last_seen, calls, errors, models, ips)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (agent_id) DO UPDATE SET agent_type = excluded.agent_type, first_seen = excluded.first_seen,
                 last_seen = excluded.last_seen, calls = excluded.calls, errors = excluded.errors,
                 models = excluded.models, ips = excluded.ips",
        )?
        .execute(params![
            merged.agent_id.as_str(),
            merged.agent_type,
            merged.first_seen.as_unix_micros(),
            merged.last_seen.as_unix_micros(),
            i64::try_from(merged.calls).unwrap_or(i64::MAX),
            i64::try_from(merged.errors).unwrap_or(i64::MAX),
            json(&merged.models),
            json(&merged.ips),
        ])?;
    }
    Ok(())
}

/// Gateway figures over a window.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct GatewayStats {
    pub calls: u64,
    pub errors: u64,
    pub agents: u64,
    #[serde(flatten)]
    pub tokens: TokenTotals,
    /// Sum over priced calls, in nano-dollars: the caller's figure where it reported one.
    pub cost_nanos: i64,
    /// What the price table says the same calls cost (calls it cannot price add nothing),
    /// so under- or over-reported costs show beside `cost_nanos`.
    pub table_cost_nanos: i64,
    /// Calls whose cost the caller reported.
    pub cost_reported_calls: u64,
    /// Calls no price matched: their cost is unknown, not zero.
    pub unpriced_calls: u64,
    /// Models in use, most called first.
    pub models: Vec<ModelStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ModelStats {
    pub model: String,
    pub calls: u64,
    #[serde(flatten)]
    pub tokens: TokenTotals,
    pub cost_nanos: i64,
}

/// Token counts summed over calls. The cache and reasoning counts are parts of the input
/// and output counts, not additions to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct TokenTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Input written to the provider's prompt cache ...
    pub cache_write_tokens: u64,
    /// ... of which for the one-hour lifetime.
    pub cache_write_1h_tokens: u64,
    /// Output spent on reasoning.
    pub reasoning_tokens: u64,
}

/// The token columns summed into a [`TokenTotals`], in its field order.
const TOKEN_COLUMNS: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
];

/// SQL for an exact sum of an integer column that no stored value can make fail. SQLite's
/// `SUM` stops with "integer overflow" past `i64`, so the column is summed as its high and
/// low 32-bit halves (two result columns; each half's sum fits for 2^31 rows) and put back
/// together in Rust by [`wide_sum`].
fn wide_sum_sql(column: &str) -> String {
    format!("COALESCE(SUM({column} >> 32), 0), COALESCE(SUM({column} & 4294967295), 0)")
}

/// Reads the two columns of a [`wide_sum_sql`] starting at `first`.
fn wide_sum(row: &Row<'_>, first: usize) -> rusqlite::Result<i128> {
    let high: i64 = row.get(first)?;
    let low: i64 = row.get(first + 1)?;
    Ok((i128::from(high) << 32) + i128::from(low))
}

/// A sum of counts, saturated into a `u64`.
fn count_sum(row: &Row<'_>, first: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(wide_sum(row, first)?.max(0)).unwrap_or(u64::MAX))
}

/// A sum of nano-dollars, saturated into an `i64`.
fn cost_sum(row: &Row<'_>, first: usize) -> rusqlite::Result<i64> {
    let sum = wide_sum(row, first)?;
    Ok(i64::try_from(sum).unwrap_or(if sum < 0 { i64::MIN } else { i64::MAX }))
}

/// The SQL sums that fill a [`TokenTotals`] (see [`token_totals`]).
fn token_sums_sql() -> String {
    TOKEN_COLUMNS.map(wide_sum_sql).join(", ")
}

/// Reads the [`token_sums_sql`] columns starting at `first`.
fn token_totals(row: &Row<'_>, first: usize) -> rusqlite::Result<TokenTotals> {
    let count = |i: usize| count_sum(row, first + 2 * i);
    Ok(TokenTotals {
        input_tokens: count(0)?,
        output_tokens: count(1)?,
        cached_tokens: count(2)?,
        cache_write_tokens: count(3)?,
        cache_write_1h_tokens: count(4)?,
        reasoning_tokens: count(5)?,
    })
}

impl Store {
    /// Agents, most recently discovered first.
    pub fn list_agents(&self, page: PageRequest) -> Result<(Vec<AgentRecord>, Option<Cursor>)> {
        let after = if page.after.is_some() { "WHERE seq < ?" } else { "" };
        let sql = format!("SELECT {COLUMNS} FROM agents {after} ORDER BY seq DESC LIMIT {}", page.fetch_limit());
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let values: Vec<i64> = page.after.map(Cursor::position).into_iter().collect();
            let items =
                stmt.query_map(rusqlite::params_from_iter(values), from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(page.finish(items, |a| a.seq))
        })
    }

    pub fn get_agent(&self, agent_id: &str) -> Result<AgentRecord> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM agents WHERE agent_id = ?1"))?
                .query_row([agent_id], from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("agent {agent_id:?}")))
        })
    }

    /// Totals and models in use over `[from, to)`. Sums are exact up to their type's range
    /// and saturate beyond it: no stored row can make this read fail.
    pub fn gateway_stats(&self, from: Option<Timestamp>, to: Option<Timestamp>) -> Result<GatewayStats> {
        let from = from.map_or(i64::MIN, Timestamp::as_unix_micros);
        let to = to.map_or(i64::MAX, Timestamp::as_unix_micros);
        let count = |v: i64| v.max(0) as u64;
        let (cost, table_cost, tokens) =
            (wide_sum_sql("cost_nanos"), wide_sum_sql("table_cost_nanos"), token_sums_sql());
        self.read(|conn| {
            let mut stats = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome != 'ok'), COUNT(DISTINCT agent_id),
                        COUNT(*) FILTER (WHERE cost_reported), COUNT(*) FILTER (WHERE unpriced),
                        {cost}, {table_cost}, {tokens}
                     FROM vitals WHERE at >= ?1 AND at < ?2",
                ))?
                .query_row([from, to], |r| {
                    Ok(GatewayStats {
                        calls: count(r.get(0)?),
                        errors: count(r.get(1)?),
                        agents: count(r.get(2)?),
                        cost_reported_calls: count(r.get(3)?),
                        unpriced_calls: count(r.get(4)?),
                        cost_nanos: cost_sum(r, 5)?,
                        table_cost_nanos: cost_sum(r, 7)?,
                        tokens: token_totals(r, 9)?,
                        models: Vec::new(),
                    })
                })?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT model_requested, COUNT(*), {cost}, {tokens}
                 FROM vitals WHERE at >= ?1 AND at < ?2 AND model_requested IS NOT NULL
                 GROUP BY model_requested ORDER BY COUNT(*) DESC, model_requested LIMIT 200",
            ))?;
            stats.models = stmt
                .query_map([from, to], |r| {
                    Ok(ModelStats {
                        model: r.get(0)?,
                        calls: count(r.get(1)?),
                        cost_nanos: cost_sum(r, 2)?,
                        tokens: token_totals(r, 4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(stats)
        })
    }
}
