//! GitHub App authentication: installation access tokens minted from an app's private key.
//!
//! Organisations often run Flux with a GitHub App rather than a user's token: a
//! GitRepository's Secret then holds the app's keys, as Flux reads them (fluxcd/pkg
//! `auth/githubapp`, `KeyAppID` and the others; `runtime/secrets` `GitHubAppDataFromSecret`):
//!
//! | key | value |
//! | --- | --- |
//! | [`APP_ID_KEY`] (`githubAppID`) | the app's numeric ID |
//! | [`INSTALLATION_ID_KEY`] (`githubAppInstallationID`) | the numeric ID of its installation on the repository's owner |
//! | [`INSTALLATION_OWNER_KEY`] (`githubAppInstallationOwner`) | instead of the ID: the account the app is installed on |
//! | [`PRIVATE_KEY_KEY`] (`githubAppPrivateKey`) | the app's private key, PEM, as GitHub's "Generate a private key" downloads it |
//! | [`BASE_URL_KEY`] (`githubAppBaseURL`) | optional: the GitHub API URL, for GitHub Enterprise Server |
//!
//! [`GitHubApp`] reads them; [`InstallationTokens`] mints installation access tokens as GitHub
//! documents: an app JWT signed RS256 with the private key, issued 60 s in the past and
//! expiring at most 10 minutes after that, whose `iss` is the app ID ("Generating a JSON Web
//! Token (JWT) for a GitHub App"), exchanged at `POST /app/installations/{id}/access_tokens`
//! for a token that expires an hour later ("Authenticating as a GitHub App installation").
//! Tokens are cached and minted anew before they expire. The JWT and the token go only to the
//! repository's own API (a [`BASE_URL_KEY`] naming another host is refused), never on a
//! redirect, and appear in no error, log line or `Debug` output.
//!
//! ```
//! use fluxhook_register::github_app::{GitHubApp, InstallationTokens};
//! use fluxhook_register::{HookClient, HttpClient, Forge, HostedRepository};
//! use fluxhook_test_githost::{FakeApp, FakeHost, HostKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let github = FakeHost::start(HostKind::GitHub).await?;
//! let fake_app = FakeApp::new();
//! github.install_app(fake_app.clone());
//!
//! // The keys of a Flux GitHub App Secret.
//! let app = GitHubApp::new(&fake_app.app_id.to_string(), &fake_app.installation_id.to_string(), FakeApp::private_key_pem().as_bytes())?;
//! let repository = HostedRepository::new(Forge::GITHUB, github.api_base().parse()?, github.owner(), github.repo());
//! let tokens = InstallationTokens::new();
//! let http = HttpClient::new()?;
//!
//! let token = tokens.token(&app, &repository, &http).await?;
//! let client = HookClient::builder(repository.clone(), token).http(http.clone()).build()?;
//! assert!(client.list().await?.is_empty());
//! // Cached: no second exchange while the token is far from expiring.
//! tokens.token(&app, &repository, &http).await?;
//! assert_eq!(github.installation_tokens_issued(), 1);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LOCATION};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::client::host_of;
use crate::delivery::cut;
use crate::http::error_chain;
use crate::{Clock, Forge, HostedRepository, HttpClient, Token, TokioClock, read_error_message};

/// The Secret key of the app's numeric ID, as Flux names it.
pub const APP_ID_KEY: &str = "githubAppID";
/// The Secret key of the installation's numeric ID, as Flux names it.
pub const INSTALLATION_ID_KEY: &str = "githubAppInstallationID";
/// The Secret key Flux also accepts instead of [`INSTALLATION_ID_KEY`] (not both): the
/// account (organization or user) the app is installed on, whose installation ID is looked up
/// with the app JWT (`GET /orgs/{org}/installation`, then `GET /users/{username}/installation`,
/// as Flux does).
pub const INSTALLATION_OWNER_KEY: &str = "githubAppInstallationOwner";
/// The Secret key of the app's PEM private key, as Flux names it.
pub const PRIVATE_KEY_KEY: &str = "githubAppPrivateKey";
/// The Secret key of the GitHub API URL (GitHub Enterprise Server), as Flux names it.
pub const BASE_URL_KEY: &str = "githubAppBaseURL";

/// Every key of a GitHub App Secret: one of them makes a Secret an app's.
pub const KEYS: [&str; 5] = [
    APP_ID_KEY,
    INSTALLATION_ID_KEY,
    INSTALLATION_OWNER_KEY,
    PRIVATE_KEY_KEY,
    BASE_URL_KEY,
];

/// How far in the past the JWT is issued: "set this 60 seconds in the past to allow for
/// clock drift" ("Generating a JSON Web Token (JWT) for a GitHub App").
const JWT_BACKDATE: Duration = Duration::from_secs(60);

/// How long after its issue time the JWT expires: GitHub allows "no more than 10 minutes into
/// the future"; issued 60 s back, it expires 9 minutes from now, a minute short of the limit
/// for clocks a little ahead of GitHub's.
const JWT_LIFETIME: Duration = Duration::from_secs(600);

/// A cached installation token is minted anew when it has less than this left: a pass of
/// registration, retries included, ends well within it.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// The GitHub REST API version of the exchange, as the hook client sends it.
const API_VERSION: &str = "2022-11-28";

/// Longest host message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why a GitHub App's keys cannot be used, or an installation token cannot be had. Never
/// shows the private key, the JWT or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GitHubAppError {
    /// A key the app needs is absent or empty.
    #[error(
        "has no {0} key (a GitHub App Secret holds {APP_ID_KEY}, {INSTALLATION_ID_KEY} and {PRIVATE_KEY_KEY})"
    )]
    MissingKey(&'static str),
    /// An ID is not a number.
    #[error("{key} is not a number: GitHub Apps are named by their numeric ID{hint}")]
    NotANumber {
        /// The key.
        key: &'static str,
        /// A hint for a likely mix-up.
        hint: &'static str,
    },
    /// The installation is named twice, or by an owner that is no account name.
    #[error(
        "set {INSTALLATION_ID_KEY} or {INSTALLATION_OWNER_KEY} (an organization or user \
         name), not both"
    )]
    InstallationTwice,
    /// The installation owner is no account name.
    #[error("{INSTALLATION_OWNER_KEY} is not an organization or user name")]
    InvalidOwner,
    /// A key is not UTF-8 text.
    #[error("{0} is not text")]
    NotText(&'static str),
    /// The private key is not PEM.
    #[error(
        "{PRIVATE_KEY_KEY} is not a PEM private key: expected the .pem file GitHub's \
         \"Generate a private key\" downloads (-----BEGIN RSA PRIVATE KEY-----)"
    )]
    NotPem,
    /// The private key is PEM of another kind.
    #[error(
        "{PRIVATE_KEY_KEY} is a PEM {0}, not an RSA private key: GitHub Apps sign with the RSA \
         private key GitHub's \"Generate a private key\" downloads (-----BEGIN RSA PRIVATE KEY-----)"
    )]
    WrongKeyType(String),
    /// The private key cannot sign.
    #[error("{PRIVATE_KEY_KEY} is not a usable RSA private key: {0}")]
    InvalidKey(String),
    /// The API URL is not one.
    #[error("{BASE_URL_KEY} is not an http(s) URL: {0}")]
    InvalidBaseUrl(String),
    /// The API URL is not the repository's.
    #[error(
        "{BASE_URL_KEY} {base} is not the API of the repository ({api}): an installation \
         token is sent only to the API that issued it"
    )]
    ForeignBaseUrl {
        /// The app's API URL.
        base: String,
        /// The repository's API URL.
        api: String,
    },
    /// The repository is not on GitHub.
    #[error("a GitHub App authenticates with GitHub only; this repository is on {0}")]
    NotGitHub(String),
    /// GitHub refused the exchange, or the look-up of the owner's installation.
    #[error("{host}: {doing} for {installation}: HTTP {status}: {message}{hint}")]
    Refused {
        /// The API's host.
        host: String,
        /// What was asked.
        doing: &'static str,
        /// The installation and its app: `installation 7 of app 42`, `the installation on
        /// acme of app 42`.
        installation: String,
        /// HTTP status code.
        status: u16,
        /// GitHub's message.
        message: String,
        /// What to check.
        hint: &'static str,
    },
    /// The app API answered with a redirect, which is not followed.
    #[error(
        "{host}: GitHub App API: HTTP {status}: the host redirects to {location}; give the API \
         URL as {BASE_URL_KEY} or in the repository's API URL"
    )]
    Redirected {
        /// The API's host.
        host: String,
        /// HTTP status code.
        status: u16,
        /// Where it pointed (no query).
        location: String,
    },
    /// The request could not be sent or its reply read.
    #[error("{host}: GitHub App API: {detail}")]
    Transport {
        /// The API's host.
        host: String,
        /// What failed.
        detail: String,
    },
    /// The reply is not what was asked for.
    #[error("{host}: GitHub App API: unexpected reply: {detail}")]
    UnexpectedReply {
        /// The API's host.
        host: String,
        /// What is wrong with it.
        detail: String,
    },
}

/// How the installation is named.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Installation {
    /// By its numeric ID.
    Id(String),
    /// By the account it is on, whose installation is looked up.
    Owner(String),
}

impl fmt::Display for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Installation::Id(id) => write!(f, "installation {id}"),
            Installation::Owner(owner) => write!(f, "the installation on {owner}"),
        }
    }
}

/// A GitHub App installation: the keys of a Flux GitHub App Secret.
///
/// ```
/// use fluxhook_register::github_app::{GitHubApp, GitHubAppError};
///
/// let error = GitHubApp::new("Iv1.8a61f9b3a7aba766", "5151", b"pem").unwrap_err();
/// assert!(error.to_string().contains("numeric ID"));
/// let error = GitHubApp::new("42", "5151", b"not a key").unwrap_err();
/// assert_eq!(error, GitHubAppError::NotPem);
/// ```
#[derive(Clone)]
pub struct GitHubApp {
    app_id: String,
    installation: Installation,
    key: EncodingKey,
    /// A digest of the key, telling apart Secrets whose key changed (for the cache).
    key_digest: [u8; 32],
    base_url: Option<Url>,
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("installation", &self.installation)
            .field("private_key", &"[redacted]")
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .finish()
    }
}

impl GitHubApp {
    /// An installation from the app's numeric ID, the installation's numeric ID and the
    /// app's PEM private key (PKCS#1 as GitHub downloads it, or PKCS#8).
    pub fn new(
        app_id: &str,
        installation_id: &str,
        private_key_pem: &[u8],
    ) -> Result<GitHubApp, GitHubAppError> {
        let app_id = numeric_app_id(app_id)?;
        let installation = Installation::Id(numeric(INSTALLATION_ID_KEY, installation_id, "")?);
        GitHubApp::with_installation(app_id, installation, private_key_pem)
    }

    /// An installation named by the account it is on (an organization or a user), as
    /// [`INSTALLATION_OWNER_KEY`] names it: its ID is looked up with the app JWT.
    pub fn for_owner(
        app_id: &str,
        owner: &str,
        private_key_pem: &[u8],
    ) -> Result<GitHubApp, GitHubAppError> {
        let app_id = numeric_app_id(app_id)?;
        // GitHub account names: letters, digits and hyphens.
        let owner = owner.trim();
        if owner.is_empty() || !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(GitHubAppError::InvalidOwner);
        }
        let installation = Installation::Owner(owner.to_owned());
        GitHubApp::with_installation(app_id, installation, private_key_pem)
    }

    fn with_installation(
        app_id: String,
        installation: Installation,
        private_key_pem: &[u8],
    ) -> Result<GitHubApp, GitHubAppError> {
        let key = signing_key(private_key_pem)?;
        Ok(GitHubApp {
            app_id,
            installation,
            key,
            key_digest: Sha256::digest(private_key_pem).into(),
            base_url: None,
        })
    }

    /// The GitHub API URL the app is installed on ([`BASE_URL_KEY`]), for GitHub Enterprise
    /// Server; it must be the repository's own API.
    pub fn with_base_url(mut self, base_url: Url) -> GitHubApp {
        self.base_url = Some(base_url);
        self
    }

    /// The app of a Secret's data, read through `value` (a key's bytes), as Flux reads it:
    /// `None` when no GitHub App key is there; an error naming the key when one is missing
    /// or wrong.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use fluxhook_register::github_app::GitHubApp;
    ///
    /// let data: BTreeMap<&str, &[u8]> = BTreeMap::from([("token", b"ghp_x".as_slice())]);
    /// assert!(GitHubApp::from_secret_data(|key| data.get(key).copied()).unwrap().is_none());
    /// let data = BTreeMap::from([("githubAppID", b"42".as_slice())]);
    /// let error = GitHubApp::from_secret_data(|key| data.get(key).copied()).unwrap_err();
    /// assert!(error.to_string().contains("has no githubAppInstallationID key"));
    /// ```
    pub fn from_secret_data<'a>(
        value: impl Fn(&str) -> Option<&'a [u8]>,
    ) -> Result<Option<GitHubApp>, GitHubAppError> {
        if KEYS.iter().all(|key| value(key).is_none()) {
            return Ok(None);
        }
        let text = |key: &'static str| -> Result<Option<&'a str>, GitHubAppError> {
            match value(key) {
                None => Ok(None),
                Some(bytes) => std::str::from_utf8(bytes)
                    .map(|text| Some(text.trim()).filter(|text| !text.is_empty()))
                    .map_err(|_| GitHubAppError::NotText(key)),
            }
        };
        let required = |key: &'static str| text(key)?.ok_or(GitHubAppError::MissingKey(key));
        let app_id = required(APP_ID_KEY)?;
        let installation = (text(INSTALLATION_ID_KEY)?, text(INSTALLATION_OWNER_KEY)?);
        // Exactly one of the two, as Flux's GitHubAppDataFromSecret demands.
        match installation {
            (Some(_), Some(_)) => return Err(GitHubAppError::InstallationTwice),
            (None, None) => return Err(GitHubAppError::MissingKey(INSTALLATION_ID_KEY)),
            _ => {}
        }
        let private_key = value(PRIVATE_KEY_KEY)
            .filter(|key| !key.is_empty())
            .ok_or(GitHubAppError::MissingKey(PRIVATE_KEY_KEY))?;
        let app = match installation {
            (Some(id), _) => GitHubApp::new(app_id, id, private_key)?,
            (None, owner) => GitHubApp::for_owner(app_id, owner.unwrap_or_default(), private_key)?,
        };
        match text(BASE_URL_KEY)? {
            None => Ok(Some(app)),
            Some(base) => {
                let url = Url::parse(base)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "https" | "http"))
                    .filter(|url| url.has_host() && !url.cannot_be_a_base())
                    .ok_or_else(|| GitHubAppError::InvalidBaseUrl(base.to_owned()))?;
                Ok(Some(app.with_base_url(url)))
            }
        }
    }

    /// The app's numeric ID.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The installation's numeric ID, when given rather than looked up.
    pub fn installation_id(&self) -> Option<&str> {
        match &self.installation {
            Installation::Id(id) => Some(id),
            Installation::Owner(_) => None,
        }
    }

    /// The account the installation is on, when it is named so.
    pub fn installation_owner(&self) -> Option<&str> {
        match &self.installation {
            Installation::Owner(owner) => Some(owner),
            Installation::Id(_) => None,
        }
    }

    /// The GitHub API URL given with the app, if any.
    pub fn base_url(&self) -> Option<&Url> {
        self.base_url.as_ref()
    }

    /// The app JWT for `now`: RS256, `iat` 60 s before `now`, `exp` 10 minutes after `iat`,
    /// `iss` the app ID.
    pub fn jwt(&self, now: SystemTime) -> Result<String, GitHubAppError> {
        let seconds = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let iat = seconds.saturating_sub(JWT_BACKDATE.as_secs());
        let claims = serde_json::json!({
            "iat": iat,
            "exp": iat + JWT_LIFETIME.as_secs(),
            "iss": self.app_id,
        });
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|error| GitHubAppError::InvalidKey(error.to_string()))
    }

    /// The API the app's tokens come from and go to for `repository`: [`BASE_URL_KEY`]
    /// when given (on the repository's API's host), else the repository's API.
    fn api_for(&self, repository: &HostedRepository) -> Result<Url, GitHubAppError> {
        if repository.forge() != Forge::GITHUB {
            return Err(GitHubAppError::NotGitHub(repository.forge().to_string()));
        }
        let api = repository.api_base();
        let Some(base) = &self.base_url else {
            return Ok(api.clone());
        };
        let same_host = base.scheme() == api.scheme()
            && base.host_str().map(str::to_ascii_lowercase)
                == api.host_str().map(str::to_ascii_lowercase)
            && base.port_or_known_default() == api.port_or_known_default();
        match same_host {
            true => Ok(base.clone()),
            false => Err(GitHubAppError::ForeignBaseUrl {
                base: base.to_string(),
                api: api.to_string(),
            }),
        }
    }

    /// What tells this installation's tokens apart: app, installation, key and API.
    fn cache_key(&self, api: &Url) -> [u8; 32] {
        let mut digest = Sha256::new();
        let installation = self.installation.to_string();
        for part in [self.app_id.as_bytes(), installation.as_bytes()] {
            digest.update(part);
            digest.update([0]);
        }
        digest.update(self.key_digest);
        digest.update(api.as_str().trim_end_matches('/').as_bytes());
        digest.finalize().into()
    }
}

/// The App ID, which people confuse with the client ID (`Iv1...`) shown beside it.
fn numeric_app_id(text: &str) -> Result<String, GitHubAppError> {
    numeric(
        APP_ID_KEY,
        text,
        " (the App ID on the app's settings page; the client ID, Iv1..., is not it)",
    )
}

/// `text` as a positive decimal number, or an error naming `key`.
fn numeric(key: &'static str, text: &str, hint: &'static str) -> Result<String, GitHubAppError> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(number) if number > 0 => Ok(number.to_string()),
        _ => Err(GitHubAppError::NotANumber { key, hint }),
    }
}

/// The signing key of a PEM RSA private key, or why it is not one.
fn signing_key(pem: &[u8]) -> Result<EncodingKey, GitHubAppError> {
    let text = String::from_utf8_lossy(pem);
    let label = text
        .split("-----BEGIN ")
        .nth(1)
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label.trim().to_owned())
        // A label is a few capital words (RFC 7468): more is key text behind a damaged
        // header line, which the error would show.
        .filter(|label| {
            label.len() <= 40
                && label
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
        })
        .ok_or(GitHubAppError::NotPem)?;
    if !matches!(label.as_str(), "RSA PRIVATE KEY" | "PRIVATE KEY") {
        return Err(GitHubAppError::WrongKeyType(label));
    }
    // jsonwebtoken tells no more than "invalid key format" for a damaged PEM and for a
    // PKCS#8 key of another algorithm; the label tells which is likelier.
    EncodingKey::from_rsa_pem(pem).map_err(|error| match (error.kind(), label.as_str()) {
        (jsonwebtoken::errors::ErrorKind::InvalidKeyFormat, "PRIVATE KEY") => {
            GitHubAppError::WrongKeyType(
                "PRIVATE KEY that is not an RSA key (or is damaged)".into(),
            )
        }
        (jsonwebtoken::errors::ErrorKind::InvalidKeyFormat, _) => GitHubAppError::InvalidKey(
            "its PEM does not decode to a key (damaged, or cut short when copied?)".into(),
        ),
        _ => GitHubAppError::InvalidKey(error.to_string()),
    })
}

/// An installation token and when it expires.
#[derive(Clone)]
struct Minted {
    token: Token,
    expires_at: SystemTime,
}

/// Installation tokens of GitHub Apps, minted on demand and cached until shortly before they
/// expire ([`REFRESH_BEFORE`]). Cheap to share: one cache for every app and API.
pub struct InstallationTokens {
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<[u8; 32], Minted>>,
}

impl fmt::Debug for InstallationTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cache.lock().map_or(0, |cache| cache.len());
        f.debug_struct("InstallationTokens")
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl Default for InstallationTokens {
    fn default() -> Self {
        InstallationTokens::new()
    }
}

impl InstallationTokens {
    /// An empty cache on the system clock.
    pub fn new() -> InstallationTokens {
        InstallationTokens::with_clock(Arc::new(TokioClock))
    }

    /// An empty cache reading the time from `clock` (for the JWT and for expiry).
    pub fn with_clock(clock: Arc<dyn Clock>) -> InstallationTokens {
        InstallationTokens {
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// An installation token of `app` for `repository`'s API: the cached one while it has
    /// more than [`REFRESH_BEFORE`] left, else a new one, exchanged through `http` (which
    /// follows no redirect) at the repository's API.
    pub async fn token(
        &self,
        app: &GitHubApp,
        repository: &HostedRepository,
        http: &HttpClient,
    ) -> Result<Token, GitHubAppError> {
        let api = app.api_for(repository)?;
        let key = app.cache_key(&api);
        let now = self.clock.now();
        if let Some(minted) = self.cached(&key)
            && minted.expires_at > now + REFRESH_BEFORE
        {
            return Ok(minted.token);
        }
        let minted = mint(app, &api, http, now).await?;
        tracing::debug!(
            host = %host_of(&api),
            app = %app.app_id,
            installation = %app.installation,
            expires_in = ?minted.expires_at.duration_since(now).unwrap_or_default(),
            "minted a GitHub App installation token"
        );
        let token = minted.token.clone();
        self.lock().insert(key, minted);
        Ok(token)
    }

    /// Forgets the token of `app` for `repository`, so that the next [`token`](Self::token)
    /// mints one: after the API refused it (revoked, or the clocks disagree on its expiry).
    pub fn forget(&self, app: &GitHubApp, repository: &HostedRepository) {
        if let Ok(api) = app.api_for(repository) {
            self.lock().remove(&app.cache_key(&api));
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Minted> {
        self.lock().get(key).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Minted>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Exchanges a new app JWT for an installation token at `api`, after looking up the
/// installation's ID when it is named by its owner.
async fn mint(
    app: &GitHubApp,
    api: &Url,
    http: &HttpClient,
    now: SystemTime,
) -> Result<Minted, GitHubAppError> {
    let call = AppCall {
        app,
        api,
        http,
        jwt: app.jwt(now)?,
    };
    let id = match &app.installation {
        Installation::Id(id) => id.clone(),
        Installation::Owner(owner) => call.installation_of(owner).await?,
    };
    let reply = call
        .send(
            Method::POST,
            &["app", "installations", &id, "access_tokens"],
            "create an installation access token",
        )
        .await?;
    let (token, expires_at) =
        read_access_token(&reply).map_err(|detail| call.unexpected(detail))?;
    Ok(Minted { token, expires_at })
}

/// The installation token and its expiry time (whole seconds) in GitHub's JSON reply to
/// `POST /app/installations/{id}/access_tokens` ("Create an installation access token for an
/// app": `token`, and `expires_at` as an RFC 3339 time), or what is missing from it. The
/// error never shows the token.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use fluxhook_register::Token;
/// use fluxhook_register::github_app::read_access_token;
///
/// let reply = serde_json::json!({"token": "ghs_16C7e42F292c6912E7710c838347Ae178B4a", "expires_at": "2016-07-11T22:14:10Z"});
/// let (token, expires_at) = read_access_token(&reply).unwrap();
/// assert_eq!(token, Token::new("ghs_16C7e42F292c6912E7710c838347Ae178B4a"));
/// assert_eq!(expires_at, UNIX_EPOCH + Duration::from_secs(1_468_275_250));
/// assert_eq!(read_access_token(&serde_json::json!({"token": "ghs_x"})), Err("no expires_at time"));
/// ```
pub fn read_access_token(reply: &Value) -> Result<(Token, SystemTime), &'static str> {
    let token = reply
        .get("token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty() && HeaderValue::from_str(token).is_ok())
        .ok_or("no token")?;
    let expires_at = reply
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(|text| text.parse::<jiff::Timestamp>().ok())
        .ok_or("no expires_at time")?;
    let expires_at =
        UNIX_EPOCH + Duration::from_secs(u64::try_from(expires_at.as_second()).unwrap_or_default());
    Ok((Token::new(token), expires_at))
}

/// Requests to the app API with one app JWT.
struct AppCall<'a> {
    app: &'a GitHubApp,
    api: &'a Url,
    http: &'a HttpClient,
    jwt: String,
}

impl AppCall<'_> {
    /// The ID of the app's installation on `owner`: an organization's, else a user's
    /// ("Get an organization installation for the authenticated app", "Get a user
    /// installation for the authenticated app"), as Flux looks it up.
    async fn installation_of(&self, owner: &str) -> Result<String, GitHubAppError> {
        const DOING: &str = "find the installation";
        let not_found =
            |error: &GitHubAppError| matches!(error, GitHubAppError::Refused { status: 404, .. });
        let reply = match self
            .send(Method::GET, &["orgs", owner, "installation"], DOING)
            .await
        {
            Err(error) if not_found(&error) => self
                .send(Method::GET, &["users", owner, "installation"], DOING)
                .await
                .map_err(|error| match error {
                    GitHubAppError::Refused {
                        host,
                        doing,
                        installation,
                        status: 404,
                        message,
                        ..
                    } => GitHubAppError::Refused {
                        host,
                        doing,
                        installation,
                        status: 404,
                        message,
                        hint: ": the app is not installed on that organization or user: check \
                               githubAppInstallationOwner",
                    },
                    other => other,
                })?,
            other => other?,
        };
        reply
            .get("id")
            .and_then(Value::as_u64)
            .map(|id| id.to_string())
            .ok_or_else(|| self.unexpected("no installation id"))
    }

    /// Sends `method` to the API path `segments` with the JWT; the JSON reply, or an error
    /// saying what was `doing`.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        doing: &'static str,
    ) -> Result<Value, GitHubAppError> {
        let host = host_of(self.api);
        let mut url = self.api.clone();
        url.path_segments_mut()
            .map_err(|()| GitHubAppError::InvalidBaseUrl(self.api.to_string()))?
            .pop_if_empty()
            .extend(segments);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", self.jwt))
            .map_err(|error| GitHubAppError::InvalidKey(error.to_string()))?;
        bearer.set_sensitive(true);
        let transport = |detail: String| GitHubAppError::Transport {
            host: host.clone(),
            detail,
        };
        let response = self
            .http
            .inner
            .request(method, url.clone())
            .header(AUTHORIZATION, bearer)
            .header(ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .send()
            .await
            .map_err(|error| transport(error_chain(&error)))?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|error| transport(error_chain(&error)))?;
        if status.is_redirection() {
            let location = location
                .and_then(|location| url.join(&location).ok())
                .map(|mut target| {
                    target.set_query(None);
                    target.set_fragment(None);
                    let _ = target.set_username("");
                    let _ = target.set_password(None);
                    target.to_string()
                })
                .unwrap_or_else(|| "nowhere (no Location header)".to_owned());
            return Err(GitHubAppError::Redirected {
                host,
                status: status.as_u16(),
                location,
            });
        }
        if !status.is_success() {
            let message = read_error_message(Forge::GITHUB, &body)
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
            let message = cut(&message.replace(&self.jwt, "[redacted]"), MAX_MESSAGE_CHARS);
            let hint = match status.as_u16() {
                401 => {
                    ": check that githubAppPrivateKey is a current key of the app githubAppID \
                     names, and this machine's clock"
                }
                404 => ": no such installation of this app: check githubAppInstallationID",
                403 => ": the installation is suspended, or the API refuses this client",
                _ => "",
            };
            return Err(GitHubAppError::Refused {
                host,
                doing,
                installation: format!("{} of app {}", self.app.installation, self.app.app_id),
                status: status.as_u16(),
                message,
                hint,
            });
        }
        serde_json::from_slice(&body).map_err(|_| self.unexpected("the body is not JSON"))
    }

    fn unexpected(&self, detail: &str) -> GitHubAppError {
        GitHubAppError::UnexpectedReply {
            host: host_of(self.api),
            detail: detail.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use fluxhook_test_githost::FakeApp;

    const KEY: &str = FakeApp::private_key_pem();
    const PUBLIC: &str = FakeApp::public_key_pem();

    #[test]
    fn jwts_are_rs256_back_dated_and_short_lived() {
        let app = GitHubApp::new("42", "7", KEY.as_bytes()).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let jwt = app.jwt(now).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "iat", "exp"]);
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], "42");
        assert_eq!(claims["iat"], 1_700_000_000 - 60);
        assert_eq!(claims["exp"], 1_700_000_000 - 60 + 600);
    }

    #[test]
    fn keys_of_other_kinds_are_named() {
        let wrong = |pem: &str| GitHubApp::new("42", "7", pem.as_bytes()).unwrap_err();
        assert_eq!(wrong("ghp_token"), GitHubAppError::NotPem);
        assert_eq!(
            wrong(PUBLIC),
            GitHubAppError::WrongKeyType("PUBLIC KEY".into())
        );
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(
            wrong(ec),
            GitHubAppError::WrongKeyType("EC PRIVATE KEY".into())
        );
        let broken =
            "-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----\n";
        let error = wrong(broken);
        assert!(
            matches!(error, GitHubAppError::InvalidKey(_)),
            "{error:?}: {error}"
        );
        assert!(!error.to_string().contains("not base64"), "{error}");
    }

    #[test]
    fn damaged_header_lines_do_not_show_the_key() {
        // Seen while writing the github_app fuzz target: the label ran on to the END line.
        let body = KEY.lines().nth(1).unwrap();
        for damaged in [
            KEY.replacen(
                "-----BEGIN RSA PRIVATE KEY-----",
                "-----BEGIN RSA PRIVATE KEY",
                1,
            ),
            KEY.replacen("-----BEGIN RSA PRIVATE KEY-----\n", "-----BEGIN ", 1),
        ] {
            let error = GitHubApp::new("42", "7", damaged.as_bytes()).unwrap_err();
            assert_eq!(error, GitHubAppError::NotPem);
            assert!(!format!("{error} {error:?}").contains(body));
        }
    }

    #[test]
    fn secrets_name_what_is_missing() {
        let read = |pairs: &[(&str, &str)]| {
            let data: HashMap<String, Vec<u8>> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect();
            GitHubApp::from_secret_data(|key| data.get(key).map(Vec::as_slice))
        };
        assert!(read(&[("token", "ghp")]).unwrap().is_none());
        let full = [
            (APP_ID_KEY, " 42\n"),
            (INSTALLATION_ID_KEY, "7"),
            (PRIVATE_KEY_KEY, KEY),
        ];
        let app = read(&full).unwrap().unwrap();
        assert_eq!((app.app_id(), app.installation_id()), ("42", Some("7")));
        assert!(!format!("{app:?}").contains("PRIVATE KEY"));
        for missing in [APP_ID_KEY, INSTALLATION_ID_KEY, PRIVATE_KEY_KEY] {
            let partial: Vec<_> = full
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(
                read(&partial).unwrap_err(),
                GitHubAppError::MissingKey(missing)
            );
        }
        let by_owner = [
            (APP_ID_KEY, "42"),
            (INSTALLATION_OWNER_KEY, "acme-corp\n"),
            (PRIVATE_KEY_KEY, KEY),
        ];
        let app = read(&by_owner).unwrap().unwrap();
        assert_eq!(
            (app.installation_owner(), app.installation_id()),
            (Some("acme-corp"), None)
        );
        let mut both = by_owner.to_vec();
        both.push((INSTALLATION_ID_KEY, "7"));
        assert_eq!(read(&both).unwrap_err(), GitHubAppError::InstallationTwice);
        let mut odd = by_owner.to_vec();
        odd[1] = (INSTALLATION_OWNER_KEY, "acme/../app");
        assert_eq!(read(&odd).unwrap_err(), GitHubAppError::InvalidOwner);
        let client_id = [
            (APP_ID_KEY, "Iv1.8a61f9b3a7aba766"),
            (INSTALLATION_ID_KEY, "7"),
            (PRIVATE_KEY_KEY, KEY),
        ];
        assert!(
            read(&client_id)
                .unwrap_err()
                .to_string()
                .contains("client ID")
        );
        let mut based = full.to_vec();
        based.push((BASE_URL_KEY, "ghe.example.com"));
        assert!(matches!(
            read(&based).unwrap_err(),
            GitHubAppError::InvalidBaseUrl(_)
        ));
    }

    #[test]
    fn tokens_go_only_to_the_repository_api() {
        let app = GitHubApp::new("42", "7", KEY.as_bytes()).unwrap();
        let ghes = |api: &str| {
            HostedRepository::new(Forge::GITHUB, Url::parse(api).unwrap(), "acme", "fleet")
        };
        let api = ghes("https://ghe.example.com/api/v3");
        assert_eq!(app.api_for(&api).unwrap(), *api.api_base());
        let based = app
            .clone()
            .with_base_url(Url::parse("https://GHE.example.com/api/v3/").unwrap());
        assert_eq!(
            based.api_for(&api).unwrap().as_str(),
            "https://ghe.example.com/api/v3/"
        );
        for foreign in [
            "https://attacker.example/api/v3",
            "http://ghe.example.com/api/v3",
            "https://ghe.example.com:8443/api/v3",
        ] {
            let error = app
                .clone()
                .with_base_url(Url::parse(foreign).unwrap())
                .api_for(&api)
                .unwrap_err();
            assert!(
                matches!(error, GitHubAppError::ForeignBaseUrl { .. }),
                "{foreign}: {error}"
            );
        }
        let gitlab = HostedRepository::new(
            Forge::GITLAB,
            Url::parse("https://gitlab.com/api/v4").unwrap(),
            "acme",
            "fleet",
        );
        assert!(matches!(
            app.api_for(&gitlab).unwrap_err(),
            GitHubAppError::NotGitHub(_)
        ));
    }
}
