//! Identifier newtypes. Each validates its text form on the way in, so a value of one of
//! these types is always well formed.

use std::fmt;
use std::str::FromStr;

/// Identifies an API key. 16 lowercase hex characters (64 random bits), public: it appears
/// in listings and in the audit log as the principal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        KeyId(bytes)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a key id (16 lowercase hex characters): {0:?}")]
pub struct KeyIdParseError(pub String);

impl FromStr for KeyId {
    type Err = KeyIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 8];
        let lower = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lower || hex::decode_to_slice(s, &mut out).is_err() {
            return Err(KeyIdParseError(s.chars().take(64).collect()));
        }
        Ok(KeyId(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for KeyId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "KeyId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^[0-9a-f]{16}$" })
    }
}

/// The prefix of every key secret Vigil issues, so leaked keys are recognisable by secret
/// scanners.
pub const API_KEY_PREFIX: &str = "vgl_";

/// Length in hex characters of the secret part of an issued key (256 random bits).
pub const API_KEY_SECRET_HEX_LEN: usize = 64;

/// A key as presented by a client, split into its public id and its secret part. The
/// secret is only ever hashed and compared, never stored or logged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub id: KeyId,
    pub secret: &'a str,
}

impl fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedKey({}, <redacted>)", self.id)
    }
}

impl<'a> PresentedKey<'a> {
    /// Splits `vgl_<id>_<secret>`. Returns `None` for anything else, which the caller may
    /// still compare against a configured bootstrap key.
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(API_KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id = id.parse().ok()?;
        let well_formed =
            secret.len() == API_KEY_SECRET_HEX_LEN && secret.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then_some(PresentedKey { id, secret })
    }

    /// Formats the full key text handed to a user once, at creation.
    pub fn format(id: KeyId, secret_hex: &str) -> String {
        format!("{API_KEY_PREFIX}{id}_{secret_hex}")
    }
}

/// Maximum length of a client-supplied request id.
pub const REQUEST_ID_LEN_MAX: usize = 128;

/// Correlates one HTTP request across the response header, every log line and the audit
/// log. Either taken from the client's `X-Request-Id` (when it is short and made of safe
/// characters) or generated as a UUIDv7.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Accepts a client-supplied id only if it is 1..=128 characters of `[A-Za-z0-9._:-]`,
    /// so it can never inject anything into logs or headers.
    pub fn from_client(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= REQUEST_ID_LEN_MAX
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| RequestId(text.to_owned()))
    }

    pub fn from_uuid(id: uuid::Uuid) -> Self {
        RequestId(id.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

/// Ids the store gives its records: opaque text (`run_…`, `upl_…`), each kind a type of its
/// own so that one cannot be passed where another is meant. Serialized as the bare string.
macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: impl Into<String>) -> Self {
                $name(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        // Reads as its text wherever text is wanted (a `&str` parameter, a log field); what
        // it guards is the other way: text is never taken for an id without saying so.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        // Hashes and orders as its text, so maps keyed by the id can be looked up by `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                $name(text.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name(text)
            }
        }
    };
}

record_id!(
    /// A run's id.
    RunId
);
record_id!(
    /// An upload's id.
    UploadId
);
record_id!(
    /// An agent's id: what a caller names itself (the `X-Agent-ID` header, an ingested
    /// item's `agent_id`), or what the gateway derives from its key or address.
    AgentId
);
record_id!(
    /// An immune incident's id (`inc-…`), minted by the engine.
    IncidentId
);
record_id!(
    /// A tenant's id: `default` until an operator creates others.
    TenantId
);
record_id!(
    /// A budget reservation's id: what admission hands out and settlement names.
    ReservationId
);

impl ReservationId {
    /// A fresh id, ordered by creation time (a UUIDv7).
    pub fn mint() -> ReservationId {
        ReservationId(uuid::Uuid::now_v7().to_string())
    }
}

impl TenantId {
    /// The tenant everything belongs to when tenants are not used.
    pub const DEFAULT: &'static str = "default";

    pub fn default_tenant() -> TenantId {
        TenantId::new(Self::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn record_ids_are_their_text_on_the_wire_and_distinct_types_in_code() {
        let run = RunId::new("run_01");
        assert_eq!(serde_json::to_value(&run).expect("json"), serde_json::json!("run_01"));
        assert_eq!(serde_json::from_value::<RunId>(serde_json::json!("run_01")).expect("read"), run);
        assert_eq!(
            (run.as_str(), run.to_string(), format!("{run:?}")),
            ("run_01", "run_01".to_owned(), "RunId(run_01)".to_owned())
        );
        assert!(run == *"run_01");
    }

    #[test]
    fn presented_key_round_trip() {
        let id: KeyId = "0123456789abcdef".parse().expect("valid id");
        let secret = "a".repeat(API_KEY_SECRET_HEX_LEN);
        let text = PresentedKey::format(id, &secret);
        let parsed = PresentedKey::parse(&text).expect("parses");
        assert_eq!(parsed.id, id);
        assert_eq!(parsed.secret, secret);
        assert!(!format!("{parsed:?}").contains(&secret), "Debug must not leak the secret");
    }

    #[test]
    fn presented_key_rejects_malformed() {
        for text in ["", "vgl_", "vgl_0123456789abcdef", "vgl_0123456789abcdef_xyz", "Bearer x"] {
            assert!(PresentedKey::parse(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn request_id_rejects_injection() {
        assert!(RequestId::from_client("abc-123").is_some());
        assert!(RequestId::from_client("a\nb").is_none());
        assert!(RequestId::from_client("").is_none());
        assert!(RequestId::from_client(&"a".repeat(129)).is_none());
    }

    proptest! {
        #[test]
        fn key_parsing_never_panics(text in ".{0,200}") {
            let _ = PresentedKey::parse(&text);
            let _ = text.parse::<KeyId>();
            let _ = RequestId::from_client(&text);
        }
    }
}
