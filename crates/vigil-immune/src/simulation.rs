//! The faults `vigil demo` and the immune benchmark inject, and what cures each.
//!
//! One model for both, so the demo shows what the benchmark measures: which diagnosis a
//! fault should get, and which healing actions end it. An action cures a fault when it
//! removes the fault's cause (the failing tools, the blown-up context, the expensive model);
//! any other leaves it running, so probation fails and the ladder moves on. How a fault
//! shows (slower calls, more tokens) is for each simulation to produce at its own level:
//! the benchmark writes observations, the demo sends model calls through the gateway.

use serde::Serialize;

use crate::diagnosis::Diagnosis;
use crate::healing::Action;

/// A fault injected into a simulated fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Calls slow down several-fold and its tools fail.
    LatencySpike,
    /// The context blows up: many times the input tokens.
    TokenBlowUp,
    /// The same tool called over and over.
    ToolLoop,
    /// Calls cost many times more (a pricier model).
    CostOverrun,
    /// Input carrying injected instructions, and the agent acting on them.
    PromptInjection,
    /// The provider fails every agent's calls at once.
    ProviderOutage,
}

impl Fault {
    /// The faults of one agent (the outage is the fleet's).
    pub const OF_AN_AGENT: [Fault; 5] =
        [Fault::LatencySpike, Fault::TokenBlowUp, Fault::ToolLoop, Fault::CostOverrun, Fault::PromptInjection];

    /// The diagnosis a good immune system reaches.
    pub fn expected(self) -> Diagnosis {
        match self {
            Fault::LatencySpike => Diagnosis::ToolInstability,
            Fault::TokenBlowUp => Diagnosis::MemoryCorruption,
            Fault::ToolLoop => Diagnosis::InfiniteLoop,
            Fault::CostOverrun => Diagnosis::CostOverrun,
            Fault::PromptInjection => Diagnosis::PromptInjection,
            Fault::ProviderOutage => Diagnosis::ExternalCause,
        }
    }

    /// Whether `action` ends this fault: it removes the cause. Throttling a slow agent whose
    /// tools fail leaves them failing, so only revoking the tools (or a reset) cures it; a
    /// tool loop ends without tools, and an injection that rides in on a tool's output (a
    /// poisoned page fetched) ends when the tools go or the context is cleared; a blown-up
    /// context needs clearing; an outage is no agent's to cure.
    pub fn cured_by(self, action: Action) -> bool {
        match self {
            Fault::LatencySpike => matches!(action, Action::RevokeTools | Action::ResetAgent),
            Fault::TokenBlowUp => matches!(action, Action::ResetMemory | Action::ResetAgent),
            Fault::ToolLoop | Fault::PromptInjection => {
                matches!(action, Action::RevokeTools | Action::ResetMemory | Action::ResetAgent)
            }
            Fault::CostOverrun => matches!(action, Action::SwitchModel | Action::ResetAgent),
            Fault::ProviderOutage => false,
        }
    }

    /// The fault's name for people.
    pub fn label(self) -> &'static str {
        match self {
            Fault::LatencySpike => "latency spike",
            Fault::TokenBlowUp => "token blow-up",
            Fault::ToolLoop => "tool loop",
            Fault::CostOverrun => "cost overrun",
            Fault::PromptInjection => "prompt injection",
            Fault::ProviderOutage => "provider outage",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healing::ladder;

    /// Every agent fault can be cured by the ladder of the diagnosis it should get, so a
    /// correct diagnosis always ends in `healed`; the outage is cured by nothing.
    #[test]
    fn each_ladder_holds_a_cure_for_its_fault() {
        for fault in Fault::OF_AN_AGENT {
            let rungs = ladder(fault.expected());
            assert!(rungs.iter().any(|&a| fault.cured_by(a)), "{fault:?}: no cure in {rungs:?}");
        }
        assert!(Action::ALL.iter().all(|&a| !Fault::ProviderOutage.cured_by(a)));
        assert!(ladder(Fault::ProviderOutage.expected()).is_empty());
    }
}
