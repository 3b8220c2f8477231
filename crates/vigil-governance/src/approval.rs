//! Approvals bound to the exact payload that executes.
//!
//! An action with effects has a tier ([`Tier`]) and declares which of its payload's fields
//! say what it does ([`ActionKind::semantic`]). A proposal's digest is the sha256 of the RFC
//! 8785 canonical JSON of those fields, the action's name, the policy version and tenant it
//! was proposed under and its expiry ([`digest`]); fields that do not change what the action
//! does (a request id, a comment) are left out, and key order or number spelling never
//! matter. An approver signs the digest they were shown ([`approve`]); just before the action
//! runs, its executor recomputes the digest from the payload it is about to send, under the
//! policy version in force then, and [`may_execute`] refuses anything that differs: another
//! argument, another action, a policy changed since, an expired or consumed approval, one
//! still pending. An approval is single-use and needs an approver other than its requester.
//! This module decides; the services keep proposals and consume them atomically.

use serde::Serialize;
use serde_json::{Map, Value};
use vigil_core::digest::Sha256Digest;
use vigil_core::time::Timestamp;

use crate::document::Domain;

/// How far an action reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub enum Tier {
    /// Reads only: runs without approval.
    A,
    /// Reversible and bounded: runs within caps and records its inverse.
    B,
    /// An effect outside Vigil: proposed only, runs once approved.
    C,
}

/// A kind of action that can be proposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionKind {
    pub name: &'static str,
    pub tier: Tier,
    /// The kill-switch domain that stops it, if any.
    pub domain: Option<Domain>,
    /// The payload's fields that say what it does: the digest covers these, and only these.
    pub semantic: &'static [&'static str],
}

/// Every action that can be proposed.
pub const ACTIONS: &[ActionKind] = &[
    ActionKind { name: "policy.save", tier: Tier::B, domain: None, semantic: &["document", "based_on"] },
    ActionKind { name: "policy.rollback", tier: Tier::B, domain: None, semantic: &["version", "based_on"] },
    ActionKind {
        name: "immune.heal",
        tier: Tier::B,
        domain: Some(Domain::Healing),
        semantic: &["agent_id", "incident_id", "action"],
    },
    ActionKind {
        name: "plugin.grant",
        tier: Tier::B,
        domain: Some(Domain::Runs),
        semantic: &["plugin_id", "sha256", "permissions"],
    },
];

/// The action named `name`.
pub fn action(name: &str) -> Option<&'static ActionKind> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// Why a digest cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("{0:?} is not an action that can be proposed")]
    UnknownAction(String),
    #[error("the payload of {action} must be a JSON object")]
    NotAnObject { action: &'static str },
    #[error("the payload of {action} lacks {field:?}, which says what it does")]
    Missing { action: &'static str, field: &'static str },
    #[error("the payload cannot be written canonically: {0}")]
    Canonical(String),
}

/// What an approval binds besides the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context<'a> {
    /// The policy version in force (`None`: no policy saved).
    pub policy_version: Option<u32>,
    pub tenant: &'a str,
    pub expires_at: Timestamp,
}

/// The digest of `action` with `payload` under `context`: sha256 of the canonical JSON
/// (RFC 8785) of `{action, payload: its semantic fields, policy_version, tenant, expires_at}`.
pub fn digest(action_name: &str, payload: &Value, context: &Context<'_>) -> Result<Sha256Digest, DigestError> {
    let kind = action(action_name).ok_or_else(|| DigestError::UnknownAction(action_name.to_owned()))?;
    let fields = payload.as_object().ok_or(DigestError::NotAnObject { action: kind.name })?;
    let mut semantic = Map::new();
    for field in kind.semantic {
        let value = fields.get(*field).ok_or(DigestError::Missing { action: kind.name, field })?;
        semantic.insert((*field).to_owned(), value.clone());
    }
    let bound = serde_json::json!({
        "action": kind.name,
        "payload": semantic,
        "policy_version": context.policy_version,
        "tenant": context.tenant,
        "expires_at": context.expires_at,
    });
    let canonical = serde_json_canonicalizer::to_vec(&bound).map_err(|e| DigestError::Canonical(e.to_string()))?;
    Ok(Sha256Digest::of(&canonical))
}

/// Where a proposal stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved {
        by: String,
        at: Timestamp,
    },
    Rejected {
        by: String,
        at: Timestamp,
    },
    /// Approved, then run: it cannot run again.
    Executed {
        at: Timestamp,
    },
}

/// A proposed action as the decisions need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub action: String,
    pub digest: Sha256Digest,
    pub requested_by: String,
    pub expires_at: Timestamp,
    pub status: Status,
}

/// Why an approval or an execution is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, schemars::JsonSchema)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    #[error("{approver:?} requested this action and cannot approve it too")]
    SelfApproval { approver: String },
    #[error("the approval expired at {at}")]
    Expired { at: Timestamp },
    #[error("only a pending proposal can be decided; this one is {status}")]
    NotPending { status: String },
    #[error("the proposal is {status}: only an approved one runs")]
    NotApproved { status: String },
    #[error("the approval was for {approved:?}, not {attempted:?}")]
    OtherAction { approved: String, attempted: String },
    #[error(
        "what is about to run (digest {now}) is not what was approved (digest {approved}): a changed argument, or a policy changed since"
    )]
    DigestMismatch { approved: Sha256Digest, now: Sha256Digest },
}

fn status_name(status: &Status) -> String {
    match status {
        Status::Pending => "pending",
        Status::Approved { .. } => "approved",
        Status::Rejected { .. } => "rejected",
        Status::Executed { .. } => "executed (an approval runs once)",
    }
    .to_owned()
}

/// Whether `approver`, shown `digest_seen`, may approve `proposal` at `now`.
pub fn approve(proposal: &Proposal, approver: &str, digest_seen: &Sha256Digest, now: Timestamp) -> Result<(), Refusal> {
    if proposal.status != Status::Pending {
        return Err(Refusal::NotPending { status: status_name(&proposal.status) });
    }
    if now >= proposal.expires_at {
        return Err(Refusal::Expired { at: proposal.expires_at });
    }
    if approver == proposal.requested_by {
        return Err(Refusal::SelfApproval { approver: approver.to_owned() });
    }
    if *digest_seen != proposal.digest {
        return Err(Refusal::DigestMismatch { approved: proposal.digest, now: *digest_seen });
    }
    Ok(())
}

/// Whether `action`, whose payload digests to `digest_now` under the policy in force, may
/// run on `proposal`'s approval at `now`.
pub fn may_execute(
    proposal: &Proposal,
    action: &str,
    digest_now: &Sha256Digest,
    now: Timestamp,
) -> Result<(), Refusal> {
    if !matches!(proposal.status, Status::Approved { .. }) {
        return Err(Refusal::NotApproved { status: status_name(&proposal.status) });
    }
    if now >= proposal.expires_at {
        return Err(Refusal::Expired { at: proposal.expires_at });
    }
    if action != proposal.action {
        return Err(Refusal::OtherAction { approved: proposal.action.clone(), attempted: action.to_owned() });
    }
    if *digest_now != proposal.digest {
        return Err(Refusal::DigestMismatch { approved: proposal.digest, now: *digest_now });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn context(version: Option<u32>) -> Context<'static> {
        Context {
            policy_version: version,
            tenant: "default",
            expires_at: Timestamp::parse_rfc3339("2026-12-08T12:15:00Z").expect("time"),
        }
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("time")
    }

    #[test]
    fn the_digest_covers_what_the_action_does_and_nothing_else() {
        let payload = json!({ "document": { "default": "deny", "rules": [] }, "based_on": 3, "comment": "tighten" });
        let base = digest("policy.save", &payload, &context(Some(3))).expect("digest");
        // Key order, number spelling and fields that do not change the action: the same.
        let reordered =
            json!({ "comment": "other words", "based_on": 3.0, "document": { "rules": [], "default": "deny" } });
        assert_eq!(digest("policy.save", &reordered, &context(Some(3))).expect("digest"), base);
        // Another argument, another action, another policy version or tenant: not the same.
        let substituted = json!({ "document": { "default": "allow", "rules": [] }, "based_on": 3 });
        assert_ne!(digest("policy.save", &substituted, &context(Some(3))).expect("digest"), base);
        let mut other_tenant = context(Some(3));
        other_tenant.tenant = "acme";
        assert_ne!(digest("policy.save", &payload, &other_tenant).expect("digest"), base);
        assert_ne!(digest("policy.save", &payload, &context(Some(4))).expect("digest"), base);
        let rollback = json!({ "version": 3, "based_on": 3, "document": {} });
        assert_ne!(digest("policy.rollback", &rollback, &context(Some(3))).expect("digest"), base);
        assert_eq!(
            digest("policy.save", &json!({ "based_on": 3 }), &context(Some(3))),
            Err(DigestError::Missing { action: "policy.save", field: "document" })
        );
        assert!(matches!(digest("rm -rf", &payload, &context(None)), Err(DigestError::UnknownAction(_))));
    }

    #[test]
    fn approvals_refuse_self_approval_expiry_and_a_digest_not_shown_and_run_once() {
        let digest_v1 = digest("policy.save", &json!({ "document": {}, "based_on": 1 }), &context(Some(1))).expect("d");
        let mut proposal = Proposal {
            action: "policy.save".into(),
            digest: digest_v1,
            requested_by: "key:alice".into(),
            expires_at: context(None).expires_at,
            status: Status::Pending,
        };
        let before = at("2026-12-08T12:00:00Z");
        let after = at("2026-12-08T12:15:00Z");
        assert!(matches!(approve(&proposal, "key:alice", &digest_v1, before), Err(Refusal::SelfApproval { .. })));
        assert!(matches!(approve(&proposal, "key:bob", &digest_v1, after), Err(Refusal::Expired { .. })));
        assert!(matches!(
            approve(&proposal, "key:bob", &Sha256Digest::ZERO, before),
            Err(Refusal::DigestMismatch { .. })
        ));
        assert!(matches!(may_execute(&proposal, "policy.save", &digest_v1, before), Err(Refusal::NotApproved { .. })));
        assert_eq!(approve(&proposal, "key:bob", &digest_v1, before), Ok(()));
        proposal.status = Status::Approved { by: "key:bob".into(), at: before };

        // What runs must be what was approved, under the policy approved against.
        let substituted =
            digest("policy.save", &json!({ "document": { "default": "allow" }, "based_on": 1 }), &context(Some(1)));
        let substituted = substituted.expect("d");
        assert!(matches!(
            may_execute(&proposal, "policy.save", &substituted, before),
            Err(Refusal::DigestMismatch { .. })
        ));
        assert!(matches!(
            may_execute(&proposal, "policy.rollback", &digest_v1, before),
            Err(Refusal::OtherAction { .. })
        ));
        let under_v2 = digest("policy.save", &json!({ "document": {}, "based_on": 1 }), &context(Some(2))).expect("d");
        assert!(matches!(
            may_execute(&proposal, "policy.save", &under_v2, before),
            Err(Refusal::DigestMismatch { .. })
        ));
        assert!(matches!(may_execute(&proposal, "policy.save", &digest_v1, after), Err(Refusal::Expired { .. })));
        assert_eq!(may_execute(&proposal, "policy.save", &digest_v1, before), Ok(()));
        proposal.status = Status::Executed { at: before };
        assert!(matches!(may_execute(&proposal, "policy.save", &digest_v1, before), Err(Refusal::NotApproved { .. })));
        assert!(matches!(approve(&proposal, "key:carol", &digest_v1, before), Err(Refusal::NotPending { .. })));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The digest depends on the semantic fields' values, never on what else rides along.
        #[test]
        fn only_the_semantic_fields_move_the_digest(document in json_value(), other in json_value(), noise in json_value()) {
            let with_noise = json!({ "document": document.clone(), "based_on": 1, "note": noise });
            let plain = json!({ "document": document.clone(), "based_on": 1 });
            let a = digest("policy.save", &with_noise, &context(Some(1))).expect("digest");
            prop_assert_eq!(a, digest("policy.save", &plain, &context(Some(1))).expect("digest"));
            let changed = json!({ "document": other.clone(), "based_on": 1 });
            let b = digest("policy.save", &changed, &context(Some(1))).expect("digest");
            prop_assert_eq!(a == b, document == other);
        }
    }
}
