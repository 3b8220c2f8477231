//! Who is calling: API keys from `X-API-Key` or `Authorization: Bearer`, the bootstrap admin
//! key from the environment, or a loopback caller in local mode.
//!
//! Active keys live in memory ([`KeyCache`]), so authenticating a request with a known key
//! touches no database. Changes made through this server apply at once. A key created by
//! another process (`vigil keys create` on the same data directory) works at once too, via a
//! store lookup on a cache miss; a key revoked by another process stops working when the
//! cache's poll of [`vigil_store::KeysVersion`] notices, within [`KEYS_POLL_INTERVAL`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;
use vigil_core::config::Mode;
use vigil_core::digest::Sha256Digest;
use vigil_core::id::{KeyId, PresentedKey};
use vigil_core::scope::Scope;
use vigil_store::ports::KeysAudit;
use vigil_store::{ActiveKey, KeyRecord, KeysVersion, StoreError};

use crate::api::ApiError;
use crate::state::AppState;

/// How often the key cache checks the database for keys changed by another process.
pub const KEYS_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Active keys by id, reloaded whenever the keys table changes.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: RwLock<Arc<HashMap<KeyId, ActiveKey>>>,
    version: tokio::sync::Mutex<Option<KeysVersion>>,
}

impl KeyCache {
    /// Reloads if the keys changed since the last load. Concurrent refreshes take turns.
    pub async fn refresh(&self, store: &dyn KeysAudit) -> Result<(), StoreError> {
        let mut version = self.version.lock().await;
        let current = store.keys_version().await?;
        if *version == Some(current) {
            return Ok(());
        }
        let keys = store.active_keys().await?.into_iter().map(|k| (k.record.id, k)).collect();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        *version = Some(current);
        Ok(())
    }

    fn get(&self, id: KeyId) -> Option<ActiveKey> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub enum Principal {
    /// A loopback caller in local mode; acts as admin.
    Local,
    /// The bootstrap admin key from `VIGIL_ADMIN_KEY(_FILE)`.
    EnvAdmin,
    /// A stored API key.
    Key(KeyRecord),
}

impl Principal {
    /// The id of the stored key the caller used, if it used one.
    pub fn key_id(&self) -> Option<String> {
        match self {
            Principal::Key(key) => Some(key.id.to_string()),
            Principal::Local | Principal::EnvAdmin => None,
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Principal::Local | Principal::EnvAdmin => Scope::Admin,
            Principal::Key(key) => key.scope,
        }
    }

    /// How the caller appears in the audit log and as `created_by`.
    pub fn label(&self) -> String {
        match self {
            Principal::Local => "local".to_owned(),
            Principal::EnvAdmin => "env-admin".to_owned(),
            Principal::Key(key) => format!("key:{}", key.id),
        }
    }
}

/// Whether `token` is the bootstrap admin key from the environment (constant time).
pub fn is_env_admin_key(state: &AppState, token: &str) -> bool {
    state
        .env_admin_key
        .as_ref()
        .is_some_and(|expected| bool::from(Sha256Digest::of(token.as_bytes()).as_bytes().ct_eq(expected.as_bytes())))
}

/// Whether a bearer token is a Vigil credential rather than a caller's provider key.
pub fn is_vigil_token(state: &AppState, token: &str) -> bool {
    token.starts_with(vigil_core::id::API_KEY_PREFIX) || is_env_admin_key(state, token)
}

/// The key text the client sent, if any. On model-call routes a bearer token that is not a
/// Vigil credential is the caller's provider key, and is ignored here.
fn presented_key<'h>(state: &AppState, headers: &'h HeaderMap, model_call: bool) -> Result<Option<&'h str>, ApiError> {
    if let Some(value) = headers.get("x-api-key") {
        let text = value.to_str().map_err(|_| ApiError::unauthorized("X-API-Key is not valid text"))?.trim();
        // Anthropic's SDKs send their provider key as X-API-Key.
        if !model_call || is_vigil_token(state, text) {
            return Ok(Some(text));
        }
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::unauthorized("Authorization header is not valid text"))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            let token = token.trim();
            Ok((!model_call || is_vigil_token(state, token)).then_some(token))
        }
        _ => Err(ApiError::unauthorized("Authorization must be `Bearer <api key>`")),
    }
}

/// Resolves the caller. `Ok(None)` is an anonymous caller; `Err` is a key that was
/// presented but is malformed, unknown or revoked.
pub async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    peer: IpAddr,
    model_call: bool,
) -> Result<Option<Principal>, ApiError> {
    let Some(text) = presented_key(state, headers, model_call)? else {
        let local = state.config.mode == Mode::Local && peer.is_loopback();
        return Ok(local.then_some(Principal::Local));
    };
    if is_env_admin_key(state, text) {
        return Ok(Some(Principal::EnvAdmin));
    }
    let invalid = || ApiError::unauthorized("invalid or revoked API key");
    let Some(presented) = PresentedKey::parse(text) else { return Err(invalid()) };
    if let Some(key) = state.keys.get(presented.id) {
        return if key.verify(presented.secret) { Ok(Some(Principal::Key(key.record))) } else { Err(invalid()) };
    }
    // Not cached: possibly created by another process since the last poll. Ask the store so
    // a new key works at once; the next poll caches it.
    let record = state.store.authenticate(text.to_owned()).await?;
    record.map(|r| Some(Principal::Key(r))).ok_or_else(invalid)
}

/// Checks that `principal` may call a route needing `needed`.
pub fn authorize(principal: Option<&Principal>, needed: Scope) -> Result<(), ApiError> {
    match principal {
        None => Err(ApiError::unauthorized(format!(
            "this route needs an API key with {needed} scope; send it as X-API-Key or Authorization: Bearer"
        ))),
        Some(p) if !p.scope().satisfies(needed) => {
            Err(ApiError::forbidden(format!("{} has {} scope; this route needs {needed}", p.label(), p.scope())))
        }
        Some(_) => Ok(()),
    }
}
