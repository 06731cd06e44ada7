//! The access token a hook is registered with: the `token` of the Secret
//! [`ACCESS_TOKEN_SECRET_ANNOTATION`](super::ACCESS_TOKEN_SECRET_ANNOTATION) names, or, when that
//! Secret is a Flux GitHub App Secret (`githubAppID`, `githubAppInstallationID`,
//! `githubAppPrivateKey`, optionally `githubAppBaseURL`), an installation token minted from it,
//! cached and minted anew before it expires.

use fluxhook_register::github_app::{GitHubApp, InstallationTokens};
use fluxhook_register::{HostedRepository, HttpClient, Token};
use fluxhook_trigger::secret::{TOKEN_KEY, TokenError, access_token_in};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::Api;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::error::AccessTokenError;

/// Reads access token Secrets, and mints GitHub App installation tokens for app Secrets.
#[derive(Debug, Default)]
pub(crate) struct AccessTokens {
    installations: InstallationTokens,
    /// The app each app Secret (`namespace/name`) held when last read, so that its token can
    /// be forgotten when a host refuses it.
    apps: Mutex<HashMap<String, GitHubApp>>,
}

impl AccessTokens {
    /// The access token of Secret `namespace/name` for `repository`, reached through `http`;
    /// an error names the Secret and what is wrong, never its data.
    pub(crate) async fn read(
        &self,
        client: &kube::Client,
        namespace: &str,
        name: &str,
        repository: &HostedRepository,
        http: &HttpClient,
    ) -> Result<Token, AccessTokenError> {
        let secret = format!("{namespace}/{name}");
        let secrets: Api<KubeSecret> = Api::namespaced(client.clone(), namespace);
        let data = secrets
            .get(name)
            .await
            .map_err(|error| AccessTokenError::Token {
                secret: secret.clone(),
                source: TokenError::unreadable(&error),
            })?
            .data
            .unwrap_or_default();
        let app = GitHubApp::from_secret_data(|key| data.get(key).map(|bytes| bytes.0.as_slice()))
            .map_err(|source| AccessTokenError::App {
                secret: secret.clone(),
                source,
            })?;
        match (app, data.contains_key(TOKEN_KEY)) {
            (Some(_), true) => Err(AccessTokenError::Both { secret }),
            (Some(app), false) => {
                let token = self
                    .installations
                    .token(&app, repository, http)
                    .await
                    .map_err(|source| AccessTokenError::Installation {
                        secret: secret.clone(),
                        app: app.app_id().to_string(),
                        source,
                    })?;
                self.lock().insert(secret, app);
                Ok(token)
            }
            (None, false) => Err(AccessTokenError::Nothing { secret }),
            (None, true) => access_token_in(&data)
                .map(Token::new)
                .map_err(|source| AccessTokenError::Token { secret, source }),
        }
    }

    /// After a host refused the access token of Secret `namespace/name` for `repository`
    /// (HTTP 401): when it is a GitHub App's installation token (revoked, or expired sooner
    /// than it said), forgets it, so that the next pass mints another.
    pub(crate) fn refused(&self, namespace: &str, name: &str, repository: &HostedRepository) {
        if let Some(app) = self.lock().get(&format!("{namespace}/{name}")) {
            tracing::info!(
                secret = %format!("{namespace}/{name}"),
                app = %app.app_id(),
                "the Git host refused a GitHub App installation token: minting another next time"
            );
            self.installations.forget(app, repository);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, GitHubApp>> {
        self.apps.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
