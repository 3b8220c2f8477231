//! Gateway vitals: one row per model call, written in batches, listed per agent and window.

use rusqlite::{Row, params};
use vigil_core::id::AgentId;
use vigil_core::page::{Cursor, PageRequest};
use vigil_core::time::Timestamp;
use vigil_core::vitals::{CallOutcome, Usage, Vital};

use crate::{Result, Store};

/// A stored vital with its position, for paging.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct StoredVital {
    pub seq: i64,
    #[serde(flatten)]
    pub vital: Vital,
}

/// Filters for listing vitals; combined with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VitalsFilter {
    pub agent_id: Option<AgentId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

const COLUMNS: &str = "seq, at, request_id, agent_id, agent_type, provider, endpoint, model_requested, model_served, \
     streamed, status, outcome, latency_us, ttft_us, input_tokens, output_tokens, cached_tokens, reasoning_tokens, \
     usage_estimated, tool_calls, tool_names, cost_nanos, unpriced, cost_reported, retries, error_class, system_prompt_sha256, \
     feature, user_tag, client_ip, injection_score, injection_rules, cache_write_tokens, cache_write_1h_tokens, \
     table_cost_nanos";

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredVital> {
    let outcome: String = row.get(11)?;
    let tool_names: String = row.get(20)?;
    let digest: Option<String> = row.get(26)?;
    let bad = |col: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, what.into())
    };
    let input: Option<i64> = row.get(14)?;
    let usage = input.map(|input| -> rusqlite::Result<Usage> {
        Ok(Usage {
            input_tokens: input.max(0) as u64,
            output_tokens: row.get::<_, Option<i64>>(15)?.unwrap_or(0).max(0) as u64,
            cached_tokens: row.get::<_, Option<i64>>(16)?.unwrap_or(0).max(0) as u64,
            reasoning_tokens: row.get::<_, Option<i64>>(17)?.unwrap_or(0).max(0) as u64,
            cache_write_tokens: row.get::<_, Option<i64>>(32)?.unwrap_or(0).max(0) as u64,
            cache_write_1h_tokens: row.get::<_, Option<i64>>(33)?.unwrap_or(0).max(0) as u64,
            estimated: row.get(18)?,
        })
    });
    Ok(StoredVital {
        seq: row.get(0)?,
        vital: Vital {
            at: Timestamp::from_unix_micros(row.get(1)?),
            request_id: row.get(2)?,
            agent_id: AgentId::new(row.get::<_, String>(3)?),
            agent_type: row.get(4)?,
            provider: row.get(5)?,
            endpoint: row.get(6)?,
            model_requested: row.get(7)?,
            model_served: row.get(8)?,
            streamed: row.get(9)?,
            status: row.get(10)?,
            outcome: CallOutcome::parse(&outcome).ok_or_else(|| bad(11, format!("outcome {outcome:?}")))?,
            latency_us: row.get::<_, i64>(12)?.max(0) as u64,
            ttft_us: row.get::<_, Option<i64>>(13)?.map(|v| v.max(0) as u64),
            usage: usage.transpose()?,
            tool_calls: row.get(19)?,
            tool_names: serde_json::from_str(&tool_names).map_err(|e| bad(20, e.to_string()))?,
            cost_nanos: row.get(21)?,
            unpriced: row.get(22)?,
            cost_reported: row.get(23)?,
            table_cost_nanos: row.get(34)?,
            retries: row.get(24)?,
            error_class: row.get(25)?,
            system_prompt_sha256: digest.map(|d| d.parse()).transpose().map_err(|e| bad(26, format!("{e}")))?,
            feature: row.get(27)?,
            user: row.get(28)?,
            client_ip: row.get(29)?,
            injection_score: row.get(30)?,
            injection_rules: match row.get::<_, Option<String>>(31)? {
                Some(rules) => serde_json::from_str(&rules).map_err(|e| bad(31, e.to_string()))?,
                None => Vec::new(),
            },
        },
    })
}

impl Store {
    /// Writes a batch of vitals in one transaction.
    pub fn insert_vitals(&self, vitals: &[Vital]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO vitals (at, request_id, agent_id, agent_type, provider, endpoint, model_requested,
                    model_served, streamed, status, outcome, latency_us, ttft_us, input_tokens, output_tokens,
                    cached_tokens, reasoning_tokens, usage_estimated, tool_calls, tool_names, cost_nanos, unpriced,
                    cost_reported, retries, error_class, system_prompt_sha256, feature, user_tag, client_ip,
                    injection_score, injection_rules, cache_write_tokens, cache_write_1h_tokens, table_cost_nanos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                    ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34)",
            )?;
            for v in vitals {
                let usage = v.usage.as_ref();
                stmt.execute(params![
                    v.at.as_unix_micros(),
                    v.request_id,
                    v.agent_id.as_str(),
                    v.agent_type,
                    v.provider,
                    v.endpoint,
                    v.model_requested,
                    v.model_served,
                    v.streamed,
                    v.status,
                    v.outcome.as_str(),
                    as_i64(v.latency_us),
                    v.ttft_us.map(as_i64),
                    usage.map(|u| as_i64(u.input_tokens)),
                    usage.map(|u| as_i64(u.output_tokens)),
                    usage.map(|u| as_i64(u.cached_tokens)),
                    usage.map(|u| as_i64(u.reasoning_tokens)),
                    usage.is_some_and(|u| u.estimated),
                    v.tool_calls,
                    serde_json::to_string(&v.tool_names).unwrap_or_else(|_| "[]".to_owned()),
                    v.cost_nanos,
                    v.unpriced,
                    v.cost_reported,
                    v.retries,
                    v.error_class,
                    v.system_prompt_sha256.map(|d| d.to_hex()),
                    v.feature,
                    v.user,
                    v.client_ip,
                    v.injection_score,
                    (!v.injection_rules.is_empty())
                        .then(|| serde_json::to_string(&v.injection_rules).unwrap_or_else(|_| "[]".to_owned())),
                    usage.map(|u| as_i64(u.cache_write_tokens)),
                    usage.map(|u| as_i64(u.cache_write_1h_tokens)),
                    v.table_cost_nanos,
                ])?;
            }
            crate::agents::record_calls(tx, vitals)?;
            Ok(())
        })
    }

    /// Lists vitals newest first.
    pub fn list_vitals(&self, filter: &VitalsFilter, page: PageRequest) -> Result<(Vec<StoredVital>, Option<Cursor>)> {
        // Only the filters in use go into the SQL and the limit into its text, so each shape
        // compiles once (see `audit::list_sql`).
        let mut conditions = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(after) = page.after {
            conditions.push("seq < ?");
            values.push(after.position().into());
        }
        if let Some(agent) = &filter.agent_id {
            conditions.push("agent_id = ?");
            values.push(String::from(agent.clone()).into());
        }
        if let Some(from) = filter.from {
            conditions.push("at >= ?");
            values.push(from.as_unix_micros().into());
        }
        if let Some(to) = filter.to {
            conditions.push("at < ?");
            values.push(to.as_unix_micros().into());
        }
        let where_clause =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!("SELECT {COLUMNS} FROM vitals {where_clause} ORDER BY seq DESC LIMIT {}", page.fetch_limit());
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let items =
                stmt.query_map(rusqlite::params_from_iter(values), from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(page.finish(items, |v| v.seq))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StoreOptions, TokenTotals};
    use vigil_core::digest::Sha256Digest;

    fn vital(agent: &str, at: i64) -> Vital {
        Vital {
            at: Timestamp::from_unix_micros(at),
            request_id: Some("r".into()),
            agent_id: agent.into(),
            agent_type: "openai-python".into(),
            provider: "mock".into(),
            endpoint: "chat.completions".into(),
            model_requested: Some("gpt-4o".into()),
            model_served: Some("gpt-4o-2024-08-06".into()),
            streamed: true,
            status: 200,
            outcome: CallOutcome::Ok,
            latency_us: 1200,
            ttft_us: Some(300),
            usage: Some(Usage {
                input_tokens: 10,
                output_tokens: 5,
                cached_tokens: 2,
                cache_write_tokens: 3,
                cache_write_1h_tokens: 1,
                reasoning_tokens: 0,
                estimated: false,
            }),
            tool_calls: 2,
            tool_names: vec!["search".into(), "fetch".into()],
            cost_nanos: Some(72_500),
            unpriced: false,
            cost_reported: false,
            table_cost_nanos: Some(5),
            retries: 0,
            error_class: None,
            system_prompt_sha256: Some(Sha256Digest::of(b"sys")),
            feature: Some("chat".into()),
            user: None,
            client_ip: Some("127.0.0.1".into()),
            injection_score: Some(0.9),
            injection_rules: vec!["override".into()],
        }
    }

    #[test]
    fn round_trip_and_filters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
        let mut unpriced = vital("b", 30);
        unpriced.usage = None;
        unpriced.cost_nanos = None;
        unpriced.unpriced = true;
        unpriced.table_cost_nanos = None;
        store.insert_vitals(&[vital("a", 10), vital("b", 20), unpriced.clone()]).expect("insert");
        let (all, next) =
            store.list_vitals(&VitalsFilter::default(), PageRequest::new(None, None).expect("page")).expect("list");
        assert_eq!(next, None);
        assert_eq!(all.iter().map(|v| v.vital.clone()).collect::<Vec<_>>(), [unpriced, vital("b", 20), vital("a", 10)]);
        let filter = VitalsFilter { agent_id: Some("b".into()), from: Some(Timestamp::from_unix_micros(25)), to: None };
        let (b, _) = store.list_vitals(&filter, PageRequest::new(None, None).expect("page")).expect("list");
        assert_eq!(b.len(), 1);
        assert!(b[0].vital.unpriced);

        // Discovery folded the calls in.
        let agent = store.get_agent("b").expect("agent b");
        assert_eq!((agent.calls, agent.errors), (2, 0));
        assert_eq!(agent.first_seen, Timestamp::from_unix_micros(20));
        assert_eq!(agent.last_seen, Timestamp::from_unix_micros(30));
        assert_eq!(agent.models, ["gpt-4o"]);
        assert_eq!(agent.ips, ["127.0.0.1"]);
        let mut failed = vital("b", 40);
        failed.outcome = CallOutcome::Unreachable;
        failed.model_requested = Some("o3".into());
        store.insert_vitals(&[failed]).expect("insert");
        let agent = store.get_agent("b").expect("agent b");
        assert_eq!((agent.calls, agent.errors, agent.models.len()), (3, 1, 2));
        let (agents, _) = store.list_agents(PageRequest::new(None, None).expect("page")).expect("list");
        assert_eq!(agents.iter().map(|a| a.agent_id.as_str()).collect::<Vec<_>>(), ["b", "a"]);

        let stats = store.gateway_stats(None, None).expect("stats");
        assert_eq!((stats.calls, stats.errors, stats.agents, stats.unpriced_calls), (4, 1, 2, 1));
        assert_eq!(stats.cost_nanos, 3 * 72_500, "unpriced calls add nothing, and say so");
        assert_eq!((stats.table_cost_nanos, stats.cost_reported_calls), (3 * 5, 0));
        let tokens = TokenTotals {
            input_tokens: 30,
            output_tokens: 15,
            cached_tokens: 6,
            cache_write_tokens: 9,
            cache_write_1h_tokens: 3,
            reasoning_tokens: 0,
        };
        assert_eq!(stats.tokens, tokens, "the call without usage adds nothing");
        let gpt4o = TokenTotals {
            input_tokens: 20,
            output_tokens: 10,
            cached_tokens: 4,
            cache_write_tokens: 6,
            cache_write_1h_tokens: 2,
            ..tokens
        };
        assert_eq!(stats.models.first().map(|m| &m.tokens), Some(&gpt4o));
        assert_eq!(stats.models.first().map(|m| (m.model.as_str(), m.calls)), Some(("gpt-4o", 3)));
        let window = store.gateway_stats(Some(Timestamp::from_unix_micros(35)), None).expect("stats");
        assert_eq!(window.calls, 1);
    }

    /// Rows at the edge of what a column holds (written before ingest bounded its counts)
    /// cannot make a read fail: sums are exact where they fit and saturate beyond.
    #[test]
    fn sums_past_i64_saturate_instead_of_failing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("vigil.db"), StoreOptions::default()).expect("open");
        let mut huge = vital("a", 10);
        huge.usage =
            Some(Usage { input_tokens: u64::MAX, output_tokens: 5_000_000_000_000_000_000, ..Usage::default() });
        huge.cost_nanos = Some(i64::MAX);
        huge.table_cost_nanos = Some(i64::MAX);
        store.insert_vitals(&[huge.clone(), huge.clone(), huge]).expect("insert");
        let stats = store.gateway_stats(None, None).expect("a sum past i64 does not fail");
        // Each u64::MAX was stored as i64::MAX; three of them are past a u64.
        assert_eq!(
            (stats.tokens.input_tokens, stats.tokens.output_tokens),
            (u64::MAX, 15_000_000_000_000_000_000),
            "exact while it fits"
        );
        assert_eq!((stats.cost_nanos, stats.table_cost_nanos), (i64::MAX, i64::MAX));
        assert_eq!(stats.models[0].tokens.input_tokens, u64::MAX, "per model too");

        // Exact, not approximate, below the edge: a float sum would lose the last digits.
        let mut exact = vital("b", 20);
        exact.cost_nanos = Some((1 << 53) + 1);
        store.insert_vitals(&[exact.clone(), exact]).expect("insert");
        let window = store.gateway_stats(Some(Timestamp::from_unix_micros(15)), None).expect("stats");
        assert_eq!(window.cost_nanos, (1 << 54) + 2);
    }
}
