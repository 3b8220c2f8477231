//! The price table: what a call cost, in integer nano-dollars, from its model and usage.
//!
//! Prices ship with Vigil and work offline. Each entry matches model names by glob and
//! carries prices per token for uncached input, cached input and output (reasoning tokens
//! are billed as output, as the providers do). Entries are tried in order, the first match
//! wins, so specific patterns come before general ones. A model no entry matches is
//! *unpriced*: the caller records `cost_nanos = None` and `unpriced = true`, never 0.

use vigil_core::glob::glob_match;
use vigil_core::vitals::Usage;

/// Prices in nano-dollars per token ($1 per million tokens = 1,000 nano-dollars per token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub pattern: &'static str,
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
}

const fn price(pattern: &'static str, input: u64, cached_input: u64, output: u64) -> Price {
    Price { pattern, input, cached_input, output }
}

/// Built-in list prices (USD, standard tier), most specific first.
pub const PRICES: &[Price] = &[
    price("gpt-4o-mini*", 150, 75, 600),
    price("gpt-4o*", 2_500, 1_250, 10_000),
    price("gpt-4.1-nano*", 100, 25, 400),
    price("gpt-4.1-mini*", 400, 100, 1_600),
    price("gpt-4.1*", 2_000, 500, 8_000),
    price("gpt-5-nano*", 50, 5, 400),
    price("gpt-5-mini*", 250, 25, 2_000),
    price("gpt-5*", 1_250, 125, 10_000),
    price("o4-mini*", 1_100, 275, 4_400),
    price("o3-mini*", 1_100, 550, 4_400),
    price("o3*", 2_000, 500, 8_000),
    price("text-embedding-3-small*", 20, 20, 0),
    price("text-embedding-3-large*", 130, 130, 0),
    price("claude-opus-4*", 15_000, 1_500, 75_000),
    price("claude-sonnet-4*", 3_000, 300, 15_000),
    price("claude-3-7-sonnet*", 3_000, 300, 15_000),
    price("claude-haiku-4*", 1_000, 100, 5_000),
    price("claude-3-5-haiku*", 800, 80, 4_000),
];

/// The first entry matching `model`.
pub fn price_for(model: &str) -> Option<&'static Price> {
    PRICES.iter().find(|p| glob_match(p.pattern, model))
}

/// Cost of `usage` at `price`, in nano-dollars.
pub fn cost_nanos(price: &Price, usage: &Usage) -> i64 {
    let cached = usage.cached_tokens.min(usage.input_tokens);
    let total = u128::from(usage.input_tokens - cached) * u128::from(price.input)
        + u128::from(cached) * u128::from(price.cached_input)
        + u128::from(usage.output_tokens) * u128::from(price.output);
    i64::try_from(total).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_patterns_win() {
        assert_eq!(price_for("gpt-4o-mini-2024-07-18").map(|p| p.pattern), Some("gpt-4o-mini*"));
        assert_eq!(price_for("gpt-4o-2024-08-06").map(|p| p.pattern), Some("gpt-4o*"));
        assert_eq!(price_for("my-local-llama"), None);
    }

    #[test]
    fn cost_counts_cached_input_at_its_own_price() {
        let p = price_for("gpt-4o").expect("priced");
        let usage = Usage { input_tokens: 1_000, cached_tokens: 400, output_tokens: 100, ..Usage::default() };
        // 600 × 2,500 + 400 × 1,250 + 100 × 10,000 nano-dollars
        assert_eq!(cost_nanos(p, &usage), 1_500_000 + 500_000 + 1_000_000);
    }
}
