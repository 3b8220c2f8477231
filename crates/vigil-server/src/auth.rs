//! Who is calling: API keys from `X-API-Key` or `Authorization: Bearer`, the bootstrap admin
//! key from the environment, or a loopback caller in local mode.

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;
use vigil_core::config::Mode;
use vigil_core::digest::Sha256Digest;
use vigil_core::id::PresentedKey;
use vigil_core::scope::Scope;
use vigil_store::KeyRecord;

use crate::api::{ApiError, blocking};
use crate::state::AppState;

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

/// The key text the client sent, if any.
fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(value) = headers.get("x-api-key") {
        let text = value.to_str().map_err(|_| ApiError::unauthorized("X-API-Key is not valid text"))?;
        return Ok(Some(text.trim()));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::unauthorized("Authorization header is not valid text"))?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized("Authorization must be `Bearer <api key>`")),
    }
}

/// Resolves the caller. `Ok(None)` is an anonymous caller; `Err` is a key that was
/// presented but is malformed, unknown or revoked.
pub async fn identify(state: &AppState, headers: &HeaderMap, peer: IpAddr) -> Result<Option<Principal>, ApiError> {
    let Some(text) = presented_key(headers)? else {
        let local = state.config.mode == Mode::Local && peer.is_loopback();
        return Ok(local.then_some(Principal::Local));
    };
    if let Some(expected) = &state.env_admin_key
        && bool::from(Sha256Digest::of(text.as_bytes()).as_bytes().ct_eq(expected.as_bytes()))
    {
        return Ok(Some(Principal::EnvAdmin));
    }
    let invalid = || ApiError::unauthorized("invalid or revoked API key");
    let Some(presented) = PresentedKey::parse(text) else { return Err(invalid()) };
    let (id, secret) = (presented.id, presented.secret.to_owned());
    let store = state.store.clone();
    let record = blocking(move || store.authenticate(PresentedKey { id, secret: &secret })).await?;
    record.map(Principal::Key).map(Some).ok_or_else(invalid)
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
