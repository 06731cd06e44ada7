//! GitHub Apps on the fake GitHub: `POST /app/installations/{id}/access_tokens` checks the
//! app JWT as GitHub does and issues installation tokens that expire, which the hooks API
//! then accepts until they do.
//!
//! What GitHub checks and answers, from its documentation and the errors it is seen to give:
//! - "Generating a JSON Web Token (JWT) for a GitHub App"
//!   (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>):
//!   RS256, signed with the app's private key (GitHub keeps the public half); `iat` in the
//!   past; `exp` no more than 10 minutes into the future; `iss` the app's ID.
//! - A JWT that does not verify, or names another app, is refused with 401 "A JSON web token
//!   could not be decoded" (github/docs#33989; octokit/auth-app.js#375 for a wrong app ID);
//!   an expired one with "'Expiration time' claim ('exp') must be a numeric value
//!   representing the future time at which the assertion expires" (sigmavirus24/github3.py#1050);
//!   one expiring too late with "'Expiration time' claim ('exp') is too far in the future"
//!   (rocq-prover/bot#204); one issued in the future with "'Issued at' claim ('iat') must be
//!   an Integer representing the time that the assertion was issued".
//! - "Create an installation access token for an app"
//!   (<https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app>):
//!   `201` with `token`, `expires_at` (an hour later), `permissions` and
//!   `repository_selection`; `404 Not Found` for an installation the app does not have.
//!   An installation token that has expired gets `401 Bad credentials`, as any bad token.
//! - "Get an organization installation for the authenticated app" (`GET
//!   /orgs/{org}/installation`) and "Get a user installation for the authenticated app" (`GET
//!   /users/{username}/installation`), with the JWT: the installation (`id`, `account`,
//!   `app_id`, `target_type`), or `404 Not Found` when the app is not installed on that
//!   account (or the account is of the other kind).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::dialect::{Ctx, Dialect, Reply};

/// The private key of [`FakeApp`]: test-only, it protects nothing.
const PRIVATE_KEY_PEM: &str = include_str!("../keys/test-only-github-app.pem");
/// Its public key, which the fake verifies JWTs with.
const PUBLIC_KEY_PEM: &str = include_str!("../keys/test-only-github-app.pub.pem");
/// A key of no app.
const OTHER_PRIVATE_KEY_PEM: &str = include_str!("../keys/test-only-other-app.pem");

/// The longest an app JWT may live: "no more than 10 minutes into the future".
const MAX_JWT_LIFETIME_SECS: u64 = 600;

/// A GitHub App installed on the fake GitHub's repository owner
/// ([`FakeHost::install_app`](crate::FakeHost::install_app)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeApp {
    /// The app's ID (the JWT's `iss`).
    pub app_id: u64,
    /// The ID of its installation on the repository's owner.
    pub installation_id: u64,
    /// How long installation tokens last: an hour on GitHub.
    pub token_lifetime: Duration,
    /// Whether the repository's owner, which the app is installed on, is an organization
    /// (else a user): which of the two installation look-ups finds it.
    pub organization: bool,
}

impl Default for FakeApp {
    fn default() -> Self {
        FakeApp::new()
    }
}

impl FakeApp {
    /// App `424242`, installation `5151`, tokens lasting an hour.
    pub fn new() -> FakeApp {
        FakeApp {
            app_id: 424_242,
            installation_id: 5151,
            token_lifetime: Duration::from_secs(3600),
            organization: true,
        }
    }

    /// The app's PEM private key (PKCS#1, as GitHub downloads it). Test-only.
    pub const fn private_key_pem() -> &'static str {
        PRIVATE_KEY_PEM
    }

    /// The PEM public key the fake verifies the app's JWTs with.
    pub const fn public_key_pem() -> &'static str {
        PUBLIC_KEY_PEM
    }

    /// The PEM private key of no app: JWTs it signs are refused.
    pub const fn other_private_key_pem() -> &'static str {
        OTHER_PRIVATE_KEY_PEM
    }
}

/// An installation token the fake issued.
#[derive(Debug, Clone)]
struct Issued {
    token: String,
    expires_at: SystemTime,
}

/// The app side of the fake's state.
#[derive(Debug, Default)]
pub(crate) struct Apps {
    app: Option<FakeApp>,
    issued: Vec<Issued>,
    /// How far the fake's clock is ahead of the system's, for JWT checks and token expiry.
    pub(crate) clock_offset: Duration,
}

impl Apps {
    pub(crate) fn install(&mut self, app: FakeApp) {
        self.app = Some(app);
    }

    fn now(&self) -> SystemTime {
        SystemTime::now() + self.clock_offset
    }

    pub(crate) fn issued(&self) -> usize {
        self.issued.len()
    }

    /// Makes every token issued so far expired.
    pub(crate) fn expire_all(&mut self) {
        let past = self.now() - Duration::from_secs(1);
        for issued in &mut self.issued {
            issued.expires_at = past;
        }
    }

    /// Whether `headers` carry an installation token the fake issued that has not expired.
    pub(crate) fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(token) = bearer(headers) else {
            return false;
        };
        let now = self.now();
        self.issued
            .iter()
            .any(|issued| issued.token == token && issued.expires_at > now)
    }

    /// The reply to a request for the app API, or `None` when `segments` (after the API
    /// prefix) name none of it.
    pub(crate) fn respond(
        &mut self,
        dialect: &dyn Dialect,
        ctx: &Ctx<'_>,
        method: &Method,
        headers: &HeaderMap,
        segments: &[String],
    ) -> Option<Reply> {
        let lookup = match segments {
            [kind, owner, installation]
                if matches!(kind.as_str(), "orgs" | "users") && installation == "installation" =>
            {
                Some((kind.as_str() == "orgs", owner.as_str()))
            }
            [app, installations, _, access_tokens]
                if app == "app"
                    && installations == "installations"
                    && access_tokens == "access_tokens" =>
            {
                None
            }
            _ => return None,
        };
        let wanted = match lookup {
            Some(_) => Method::GET,
            None => Method::POST,
        };
        if *method != wanted {
            return Some(dialect.not_found(ctx));
        }
        let unauthorized = |message: &str| dialect.error(ctx, StatusCode::UNAUTHORIZED, message);
        let Some(app) = self.app.clone() else {
            return Some(unauthorized(UNDECODABLE));
        };
        if let Err(message) = self.check_jwt(&app, headers) {
            return Some(unauthorized(message));
        }
        if let Some((organization, owner)) = lookup {
            let installed =
                organization == app.organization && owner.eq_ignore_ascii_case(&ctx.config.owner);
            let kind = if app.organization {
                "Organization"
            } else {
                "User"
            };
            return Some(match installed {
                true => Reply::json(
                    StatusCode::OK,
                    json!({
                        "id": app.installation_id,
                        "account": {"login": ctx.config.owner, "type": kind},
                        "app_id": app.app_id,
                        "target_type": kind,
                        "repository_selection": "selected",
                    }),
                ),
                false => Reply::json(
                    StatusCode::NOT_FOUND,
                    json!({
                        "message": "Not Found",
                        "documentation_url": "https://docs.github.com/rest/apps/apps#get-an-organization-installation-for-the-authenticated-app",
                        "status": "404",
                    }),
                ),
            });
        }
        let id = segments.get(2).map(String::as_str).unwrap_or_default();
        if id.parse::<u64>().ok() != Some(app.installation_id) {
            return Some(Reply::json(
                StatusCode::NOT_FOUND,
                json!({
                    "message": "Not Found",
                    "documentation_url": "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
                    "status": "404",
                }),
            ));
        }
        let token = format!("ghs_{:036}", self.issued.len() + 1);
        let expires_at = self.now() + app.token_lifetime;
        self.issued.push(Issued {
            token: token.clone(),
            expires_at,
        });
        Some(Reply::json(
            StatusCode::CREATED,
            json!({
                "token": token,
                "expires_at": rfc3339(expires_at),
                "permissions": {"metadata": "read", "repository_hooks": "write"},
                "repository_selection": "selected",
            }),
        ))
    }

    /// Checks the app JWT of `headers` as GitHub does; the message GitHub refuses it with.
    fn check_jwt(&self, app: &FakeApp, headers: &HeaderMap) -> Result<(), &'static str> {
        let jwt = bearer(headers).ok_or(UNDECODABLE)?;
        let key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes()).map_err(|_| UNDECODABLE)?;
        // The signature and algorithm here; the times below, against the fake's clock.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
            .map_err(|_| UNDECODABLE)?
            .claims;
        let issuer = match &claims["iss"] {
            Value::String(text) => text.parse::<u64>().ok(),
            Value::Number(number) => number.as_u64(),
            _ => None,
        };
        if issuer != Some(app.app_id) {
            return Err(UNDECODABLE);
        }
        let now = self
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let exp = claims["exp"].as_u64().filter(|exp| *exp > now).ok_or(
            "'Expiration time' claim ('exp') must be a numeric value representing the future \
             time at which the assertion expires",
        )?;
        let iat = claims["iat"].as_u64().filter(|iat| *iat <= now).ok_or(
            "'Issued at' claim ('iat') must be an Integer representing the time that the \
             assertion was issued",
        )?;
        if exp > now + MAX_JWT_LIFETIME_SECS || exp.saturating_sub(iat) > MAX_JWT_LIFETIME_SECS {
            return Err("'Expiration time' claim ('exp') is too far in the future");
        }
        Ok(())
    }
}

/// GitHub's answer to a JWT that does not verify or names another app.
const UNDECODABLE: &str = "A JSON web token could not be decoded";

/// The token of an `Authorization: Bearer` (or `token`) header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then_some(token.trim())
}

/// `time` as GitHub writes it: `2016-07-11T22:14:10Z`.
fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| jiff::Timestamp::from_second(seconds).ok())
        .map(|timestamp| timestamp.to_string())
        .unwrap_or_default()
}
