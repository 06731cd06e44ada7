//! Discovery and key sets, fetched per issuer and kept for a while.
//!
//! Each issuer has its own slot behind an async lock, so concurrent requests
//! for one issuer share one fetch. Fetches of one issuer are at least
//! `min_refresh_interval` apart whatever the tokens say, so a flood of tokens
//! with made-up key ids costs the issuer one request per interval at most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::error::{VerifyError, clip};
use crate::jws::{PublicKey, parse_jwks};
use crate::source::KeySource;

/// The discovery document URL of `issuer`, as go-oidc builds it.
pub(crate) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The fields of an OpenID Provider configuration we use.
#[derive(Deserialize)]
struct ProviderMetadata {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// What an issuer publishes, as last fetched.
#[derive(Debug)]
pub(crate) struct IssuerKeys {
    /// The algorithms the issuer signs ID tokens with.
    algorithms: Vec<String>,
    /// Its usable signing keys.
    pub(crate) keys: Vec<PublicKey>,
    fetched_at: Instant,
}

impl IssuerKeys {
    /// Whether the issuer says it signs ID tokens with `alg`.
    pub(crate) fn advertises(&self, alg: &str) -> bool {
        self.algorithms.iter().any(|a| a == alg)
    }
}

/// Fetches the discovery document of `issuer`, then its key set.
async fn fetch_issuer_keys(
    source: &dyn KeySource,
    issuer: &str,
) -> Result<IssuerKeys, VerifyError> {
    let document = source
        .fetch(&discovery_url(issuer))
        .await
        .map_err(|source| VerifyError::Discovery {
            issuer: issuer.to_owned(),
            source,
        })?;
    let metadata: ProviderMetadata =
        serde_json::from_slice(&document).map_err(|e| VerifyError::InvalidDiscovery {
            issuer: issuer.to_owned(),
            reason: e.to_string(),
        })?;
    if metadata.issuer != issuer {
        return Err(VerifyError::DiscoveredIssuerMismatch {
            configured: issuer.to_owned(),
            discovered: clip(&metadata.issuer),
        });
    }
    let jwks_uri = metadata.jwks_uri;
    let jwks = source
        .fetch(&jwks_uri)
        .await
        .map_err(|source| VerifyError::Jwks {
            jwks_uri: jwks_uri.clone(),
            source,
        })?;
    let keys = parse_jwks(&jwks).map_err(|reason| VerifyError::InvalidJwks {
        jwks_uri: jwks_uri.clone(),
        reason,
    })?;
    Ok(IssuerKeys {
        // OpenID Connect Discovery requires the list; go-oidc assumes RS256,
        // the one algorithm every provider must support, when it is absent.
        algorithms: metadata
            .id_token_signing_alg_values_supported
            .unwrap_or_else(|| vec!["RS256".to_owned()]),
        keys,
        fetched_at: Instant::now(),
    })
}

/// One issuer's cache entry: when it was last fetched and what that gave,
/// or nothing before the first fetch.
type Slot = Option<(Instant, Result<Arc<IssuerKeys>, VerifyError>)>;

/// Issuer keys by issuer URL.
pub(crate) struct KeyCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    ttl: Duration,
    min_refresh_interval: Duration,
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration, min_refresh_interval: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            ttl,
            min_refresh_interval,
        }
    }

    /// The keys of `issuer`: cached ones while younger than the TTL, else
    /// fetched. With `lacking`, the caller found no key for its token in
    /// those keys and asks for a refetch, which happens only if nobody has
    /// refetched since and the last fetch is older than the minimum refresh
    /// interval; otherwise the current keys are returned.
    ///
    /// A failed refetch keeps serving the keys already known: an issuer that
    /// is briefly down does not stop tokens signed with keys we have.
    pub(crate) async fn keys(
        &self,
        source: &dyn KeySource,
        issuer: &str,
        lacking: Option<&Arc<IssuerKeys>>,
    ) -> Result<Arc<IssuerKeys>, VerifyError> {
        let slot = Arc::clone(
            self.slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(issuer.to_owned())
                .or_default(),
        );
        let mut slot = slot.lock().await;
        let now = Instant::now();
        let known = match &*slot {
            None => None,
            Some((last_fetch, cached)) => {
                let wanted = match (cached, lacking) {
                    (Err(_), _) => true,
                    (Ok(keys), None) => now.duration_since(keys.fetched_at) >= self.ttl,
                    (Ok(keys), Some(seen)) => Arc::ptr_eq(keys, seen),
                };
                let allowed = now.duration_since(*last_fetch) >= self.min_refresh_interval;
                if !(wanted && allowed) {
                    return cached.clone();
                }
                cached.as_ref().ok().map(Arc::clone)
            }
        };
        let cached = match (fetch_issuer_keys(source, issuer).await, known) {
            (Ok(keys), _) => Ok(Arc::new(keys)),
            (Err(err), known) => {
                tracing::warn!(issuer, error = %err, "cannot fetch the issuer's keys");
                known.ok_or(err)
            }
        };
        *slot = Some((now, cached.clone()));
        cached
    }
}
