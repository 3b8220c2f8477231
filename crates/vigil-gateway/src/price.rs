//! The price table: what a call cost, in integer nano-dollars, from its model and usage.
//!
//! Prices ship with Vigil ([`BUILT_IN`]) and work offline; the config can add or override
//! entries (`[[gateway.prices]]`). Each entry matches model names by glob, carries prices
//! for uncached input, cached input and output (reasoning tokens are billed as output, as
//! the providers do) in nano-dollars per million tokens, and may start at a date. For a
//! call, configured entries are tried before built-in ones; among the entries of one source
//! that match the model and have started, the one that started last wins, and on a tie the
//! first listed. A model nothing matches is *unpriced*: the caller records `cost_nanos =
//! None` and `unpriced = true`, never 0.

use vigil_core::config::PriceConfig;
use vigil_core::glob::glob_match;
use vigil_core::time::Timestamp;
use vigil_core::vitals::Usage;

/// One price entry. Prices in nano-dollars per million tokens ($1/M = 1,000,000,000).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub pattern: String,
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    /// Applies to calls at or after this instant; `None` means always.
    pub since: Option<Timestamp>,
}

/// $ per million tokens → nano-dollars per million tokens.
const fn usd(dollars_milli: u64) -> u64 {
    dollars_milli * 1_000_000
}

/// Built-in list prices (USD per million tokens, in thousandths: 2_500 = $2.50), most
/// specific first.
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
                output: p.output_nanos_per_mtok,
                since: p.since,
            })
            .collect();
        let built_in = BUILT_IN
            .iter()
            .map(|&(pattern, input, cached, output)| Price {
                pattern: pattern.to_owned(),
                input: usd(input),
                cached_input: usd(cached),
                output: usd(output),
                since: None,
            })
            .collect();
        PriceTable { configured, built_in }
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
}

/// Cost of `usage` at `price`, in nano-dollars, rounded to the nearest.
pub fn cost_nanos(price: &Price, usage: &Usage) -> i64 {
    let cached = usage.cached_tokens.min(usage.input_tokens);
    let per_million = u128::from(usage.input_tokens - cached) * u128::from(price.input)
        + u128::from(cached) * u128::from(price.cached_input)
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
    fn configured_prices_override_and_start_on_their_date() {
        let configured = [
            PriceConfig {
                model: "gpt-4o*".into(),
                input_nanos_per_mtok: 1_000_000_000,
                cached_input_nanos_per_mtok: 0,
                output_nanos_per_mtok: 2_000_000_000,
                since: None,
            },
            PriceConfig {
                model: "gpt-4o*".into(),
                input_nanos_per_mtok: 37_500_000,
                cached_input_nanos_per_mtok: 0,
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
