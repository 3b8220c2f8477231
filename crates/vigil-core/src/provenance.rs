//! The provenance block every JSON success answer carries: when it was generated, what kind
//! of aggregation it is, where it came from, and for which tenant and period.

use crate::time::Timestamp;

/// What shape of answer `data` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// A page of items.
    List,
    /// Figures computed over many items.
    Summary,
    /// A count.
    Count,
    /// One item.
    Detail,
}

/// The time window an answer covers, when it covers one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Period {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Where an answer came from. `tenant_id` and `period` are always present, `null` when they
/// do not apply, so clients can rely on one shape.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Provenance {
    pub generated_at: Timestamp,
    pub aggregation: Aggregation,
    /// The subsystem and collection the data was read from, for example `store:audit_log`.
    pub source: String,
    pub tenant_id: Option<String>,
    pub period: Option<Period>,
}

impl Provenance {
    pub fn new(generated_at: Timestamp, aggregation: Aggregation, source: impl Into<String>) -> Self {
        Provenance { generated_at, aggregation, source: source.into(), tenant_id: None, period: None }
    }
}
