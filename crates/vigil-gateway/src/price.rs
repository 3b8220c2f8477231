//! The price table: what a call cost, in integer nano-dollars, from its model and usage.
//!
//! Prices ship with Vigil ([`BUILT_IN`]) and work offline; the config can add or override
//! entries (`[[gateway.prices]]`). Each entry matches model names by glob, carries prices
//! for each kind of token in nano-dollars per million tokens, and may start at a date:
//! plain input, cache reads, cache writes (Anthropic bills writes for the five-minute
//! cache at 1.25x input and for the one-hour cache at 2x) and output (reasoning tokens are
//! billed as output, as the providers do). For a call, configured entries are tried before
//! built-in ones; among the entries of one source that match the model and have started,
//! the one that started last wins, and on a tie the first listed. A model nothing matches
//! is *unpriced*: the call records `cost_nanos = None` and `unpriced = true`, never 0.
//!
//! A cost the caller reports wins, but the table's figure is kept beside it
//! (`table_cost_nanos`), so a caller that under-reports can be seen.

use vigil_core::config::PriceConfig;
use vigil_core::glob::glob_match;
use vigil_core::time::Timestamp;
use vigil_core::vitals::{Usage, Vital};

/// One price entry. Prices in nano-dollars per million tokens ($1/M = 1,000,000,000).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub pattern: String,
    pub input: u64,
    pub cached_input: u64,
    /// Input written to the prompt cache for the short (five-minute) lifetime.
    pub cache_write: u64,
    /// Input written to the prompt cache for the long (one-hour) lifetime.
    pub cache_write_1h: u64,
    pub output: u64,
    /// Applies to calls at or after this instant; `None` means always.
    pub since: Option<Timestamp>,
}

/// $ per million tokens → nano-dollars per million tokens.
const fn usd(dollars_milli: u64) -> u64 {
    dollars_milli * 1_000_000
}

/// Built-in list prices (USD per million tokens, in thousandths: 2_500 = $2.50), most
/// specific first: input, cache read, output. Cache writes are priced from the input price
/// by the provider's rule ([`CacheWrites`]).
pub const BUILT_IN: &[(&str, u64, u64, u64)] = &[
    ("gpt-4o-mini*", 150, 75, 600),
    ("gpt-4o*", 2_500, 1_250, 10_000),
    ("gpt-4.1-nano*", 100, 25, 400),
    ("gpt-4.1-mini*", 400, 100, 1_600),
    ("gpt-4.1*", 2_000, 500, 8_000),
    ("gpt-5-nano*", 50, 5, 400),
    ("gpt-5-mini*", 250, 25, 2_000),
    ("gpt-5*", 1_250, 125, 10_000),
    ("o4-mini*", 1_100, 275, 4_400),
    ("o3-mini*", 1_100, 550, 4_400),
    ("o3*", 2_000, 500, 8_000),
    ("text-embedding-3-small*", 20, 20, 0),
    ("text-embedding-3-large*", 130, 130, 0),
    ("claude-opus-4*", 15_000, 1_500, 75_000),
    ("claude-sonnet-4*", 3_000, 300, 15_000),
    ("claude-3-7-sonnet*", 3_000, 300, 15_000),
    ("claude-haiku-4*", 1_000, 100, 5_000),
    ("claude-3-5-haiku*", 800, 80, 4_000),
];

/// The models a gateway with `config` can serve, as patterns (its providers' and its price
/// table's), for checking what a policy refers to; empty when a provider serves any model,
/// since then no name is unknown.
pub fn served_models(config: &vigil_core::config::GatewayConfig) -> Vec<String> {
    if config.providers.iter().any(|p| p.models.is_empty()) {
        return Vec::new();
    }
    let prices = PriceTable::new(&config.prices);
    let mut models: Vec<String> = config.providers.iter().flat_map(|p| p.models.iter().cloned()).collect();
    models.extend(prices.patterns().map(str::to_owned));
    models.sort();
    models.dedup();
    models
}

/// The prices in force: configured entries, then the built-in ones.
#[derive(Clone, Debug)]
pub struct PriceTable {
    configured: Vec<Price>,
    built_in: Vec<Price>,
}

impl PriceTable {
    pub fn new(configured: &[PriceConfig]) -> Self {
        let configured = configured
            .iter()
            .map(|p| Price {
                pattern: p.model.clone(),
                input: p.input_nanos_per_mtok,
                cached_input: p.cached_input_nanos_per_mtok,
                cache_write: p.cache_write_nanos_per_mtok,
                cache_write_1h: p.cache_write_1h_nanos_per_mtok,
                output: p.output_nanos_per_mtok,
                since: p.since,
            })
            .collect();
        let built_in = BUILT_IN
            .iter()
            .map(|&(pattern, input, cached, output)| {
                let input = usd(input);
                // Only Anthropic reports (and bills) cache writes; others bill no more than input.
                let (cache_write, cache_write_1h) =
                    if pattern.starts_with("claude") { (input * 5 / 4, input * 2) } else { (input, input) };
                Price {
                    pattern: pattern.to_owned(),
                    input,
                    cached_input: usd(cached),
                    cache_write,
                    cache_write_1h,
                    output: usd(output),
                    since: None,
                }
            })
            .collect();
        PriceTable { configured, built_in }
    }

    /// Every model pattern the table prices, configured first.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.configured.iter().chain(&self.built_in).map(|p| p.pattern.as_str())
    }

    /// The entry pricing `model` for a call at `at`.
    pub fn price_for(&self, model: &str, at: Timestamp) -> Option<&Price> {
        [&self.configured, &self.built_in].into_iter().find_map(|entries| {
            entries
                .iter()
                .enumerate()
                .filter(|(_, p)| glob_match(&p.pattern, model) && p.since.is_none_or(|s| s <= at))
                // Latest start wins; on a tie, the first listed (lowest index).
                .max_by_key(|(i, p)| (p.since, std::cmp::Reverse(*i)))
                .map(|(_, p)| p)
        })
    }

    /// Prices `vital` from its usage and model (the model served, else the one asked for):
    /// sets `table_cost_nanos`, and unless the caller reported a cost, `cost_nanos` and
    /// `unpriced` too. A vital without usage costs nothing to price and is left alone.
    pub fn price(&self, vital: &mut Vital) {
        let Some(usage) = vital.usage else { return };
        let served = vital.model_served.as_deref().and_then(|m| self.price_for(m, vital.at));
        let price = served.or_else(|| vital.model_requested.as_deref().and_then(|m| self.price_for(m, vital.at)));
        vital.table_cost_nanos = price.map(|p| cost_nanos(p, &usage));
        if !vital.cost_reported {
            vital.cost_nanos = vital.table_cost_nanos;
            vital.unpriced = vital.cost_nanos.is_none();
        }
    }
}

/// Cost of `usage` at `price`, in nano-dollars, rounded to the nearest. Cache reads and
/// writes are parts of `input_tokens`; counts that claim more than the whole are clamped.
pub fn cost_nanos(price: &Price, usage: &Usage) -> i64 {
    let cached = usage.cached_tokens.min(usage.input_tokens);
    let written = usage.cache_write_tokens.min(usage.input_tokens - cached);
    let written_1h = usage.cache_write_1h_tokens.min(written);
    let plain = usage.input_tokens - cached - written;
    let per_million = u128::from(plain) * u128::from(price.input)
        + u128::from(cached) * u128::from(price.cached_input)
        + u128::from(written - written_1h) * u128::from(price.cache_write)
        + u128::from(written_1h) * u128::from(price.cache_write_1h)
        + u128::from(usage.output_tokens) * u128::from(price.output);
    i64::try_from((per_million + 500_000) / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("time")
    }

    #[test]
    fn specific_patterns_win() {
        let table = PriceTable::new(&[]);
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(table.price_for("gpt-4o-mini-2024-07-18", now).map(|p| p.pattern.as_str()), Some("gpt-4o-mini*"));
        assert_eq!(table.price_for("gpt-4o-2024-08-06", now).map(|p| p.pattern.as_str()), Some("gpt-4o*"));
        assert_eq!(table.price_for("my-local-llama", now), None);
    }

    #[test]
    fn cost_counts_cached_input_at_its_own_price() {
        let table = PriceTable::new(&[]);
        let p = table.price_for("gpt-4o", at("2026-01-01T00:00:00Z")).expect("priced");
        let usage = Usage { input_tokens: 1_000, cached_tokens: 400, output_tokens: 100, ..Usage::default() };
        // 600 × 2,500 + 400 × 1,250 + 100 × 10,000 nano-dollars
        assert_eq!(cost_nanos(p, &usage), 1_500_000 + 500_000 + 1_000_000);
    }

    #[test]
    fn cache_writes_cost_more_than_input_and_one_hour_writes_more_again() {
        let table = PriceTable::new(&[]);
        let p = table.price_for("claude-sonnet-4-5", at("2026-01-01T00:00:00Z")).expect("priced");
        assert_eq!((p.cache_write, p.cache_write_1h), (usd(3_750), usd(6_000)));
        let usage = Usage {
            input_tokens: 10_000,
            cached_tokens: 4_000,
            cache_write_tokens: 3_000,
            cache_write_1h_tokens: 1_000,
            output_tokens: 100,
            ..Usage::default()
        };
        // 3,000 plain × 3,000 + 4,000 read × 300 + 2,000 × 3,750 + 1,000 × 6,000 + 100 × 15,000
        assert_eq!(cost_nanos(p, &usage), 9_000_000 + 1_200_000 + 7_500_000 + 6_000_000 + 1_500_000);
        // Counts claiming more than the whole input are clamped, never underflow.
        let wild = Usage {
            input_tokens: 10,
            cached_tokens: 8,
            cache_write_tokens: 8,
            cache_write_1h_tokens: 9,
            ..Usage::default()
        };
        assert_eq!(cost_nanos(p, &wild), 8 * 300 + 2 * 6_000);
        // OpenAI reports no cache writes; its entries price any at the input price.
        let gpt = table.price_for("gpt-4o", at("2026-01-01T00:00:00Z")).expect("priced");
        assert_eq!((gpt.cache_write, gpt.cache_write_1h), (gpt.input, gpt.input));
    }

    #[test]
    fn a_reported_cost_wins_and_the_tables_is_kept_beside_it() {
        let table = PriceTable::new(&[]);
        let mut vital = Vital {
            at: at("2026-01-01T00:00:00Z"),
            model_requested: Some("gpt-4o".into()),
            usage: Some(Usage { input_tokens: 1_000, output_tokens: 100, ..Usage::default() }),
            cost_nanos: Some(1),
            unpriced: false,
            cost_reported: true,
            ..crate::testing::vital("a")
        };
        table.price(&mut vital);
        assert_eq!((vital.cost_nanos, vital.table_cost_nanos, vital.unpriced), (Some(1), Some(3_500_000), false));
        vital.cost_reported = false;
        table.price(&mut vital);
        assert_eq!((vital.cost_nanos, vital.table_cost_nanos), (Some(3_500_000), Some(3_500_000)));
        vital.model_requested = Some("my-local-llama".into());
        table.price(&mut vital);
        assert_eq!((vital.cost_nanos, vital.table_cost_nanos, vital.unpriced), (None, None, true));
    }

    #[test]
    fn configured_prices_override_and_start_on_their_date() {
        let configured = [
            PriceConfig {
                model: "gpt-4o*".into(),
                input_nanos_per_mtok: 1_000_000_000,
                cached_input_nanos_per_mtok: 0,
                cache_write_nanos_per_mtok: 0,
                cache_write_1h_nanos_per_mtok: 0,
                output_nanos_per_mtok: 2_000_000_000,
                since: None,
            },
            PriceConfig {
                model: "gpt-4o*".into(),
                input_nanos_per_mtok: 37_500_000,
                cached_input_nanos_per_mtok: 0,
                cache_write_nanos_per_mtok: 0,
                cache_write_1h_nanos_per_mtok: 0,
                output_nanos_per_mtok: 0,
                since: Some(at("2026-06-01T00:00:00Z")),
            },
        ];
        let table = PriceTable::new(&configured);
        let before = table.price_for("gpt-4o", at("2026-05-31T23:59:59Z")).expect("priced");
        assert_eq!(before.input, 1_000_000_000, "the configured entry beats the built-in one");
        let after = table.price_for("gpt-4o", at("2026-06-01T00:00:00Z")).expect("priced");
        assert_eq!(after.input, 37_500_000, "the later start wins once it has started");
        // $0.0375 per million: fractions of a nano-dollar per token add up exactly.
        let usage = Usage { input_tokens: 1_000_000, ..Usage::default() };
        assert_eq!(cost_nanos(after, &usage), 37_500_000);
        assert_eq!(table.price_for("claude-opus-4", at("2026-06-01T00:00:00Z")).map(|p| p.input), Some(usd(15_000)));
    }
}
