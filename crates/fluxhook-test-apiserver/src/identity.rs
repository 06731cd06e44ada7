//! Who sends a request: bearer tokens mapped to users and ServiceAccounts, as kube-apiserver's
//! token authenticators map them, and the anonymous user for requests without a token.
//!
//! Sources (kubernetes/kubernetes, v1.33):
//! - `staging/src/k8s.io/apiserver/pkg/authentication/request/bearertoken/bearertoken.go`: the
//!   `Authorization: Bearer <token>` header; a token nobody knows is 401 Unauthorized, a
//!   request without one goes on as anonymous.
//! - `staging/src/k8s.io/apiserver/pkg/authentication/serviceaccount/util.go`: a
//!   ServiceAccount is user `system:serviceaccount:<namespace>:<name>` in the groups
//!   `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
//! - `staging/src/k8s.io/apiserver/pkg/authentication/group/authenticated_group_adder.go`:
//!   every authenticated user is also in `system:authenticated`.
//! - `staging/src/k8s.io/apiserver/pkg/authentication/request/anonymous/anonymous.go`:
//!   `system:anonymous` in `system:unauthenticated`.

use std::collections::HashMap;

use http::{HeaderMap, header};

use crate::error::ApiError;
use crate::meta::random_u64;

/// The group of every authenticated user.
pub(crate) const AUTHENTICATED: &str = "system:authenticated";
/// The group of the anonymous user.
pub(crate) const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group kube-apiserver allows everything, whatever RBAC says.
pub(crate) const MASTERS: &str = "system:masters";
const ANONYMOUS: &str = "system:anonymous";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The administrator's name, as kubeadm's `admin.conf` names it.
const ADMIN: &str = "kubernetes-admin";

/// A user the server knows, and the bearer token that authenticates as it.
///
/// ```
/// use fluxhook_test_apiserver::TestApiServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let server = TestApiServer::start().await?;
/// let receiver = server.service_account("flux-system", "fluxhook-receiver");
/// assert_eq!(receiver.name(), "system:serviceaccount:flux-system:fluxhook-receiver");
/// assert_eq!(
///     receiver.groups(),
///     ["system:serviceaccounts", "system:serviceaccounts:flux-system", "system:authenticated"]
/// );
/// // Its kubeconfig carries the token.
/// assert!(server.kubeconfig_yaml_for(&receiver).contains(receiver.token()));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    name: String,
    groups: Vec<String>,
    token: String,
}

impl Identity {
    /// The user name (`system:serviceaccount:<namespace>:<name>` for a ServiceAccount).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The groups, `system:authenticated` last.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The bearer token that authenticates as this user.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// The user a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) groups: Vec<String>,
}

impl User {
    fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.to_owned(),
            groups: vec![UNAUTHENTICATED.to_owned()],
        }
    }

    pub(crate) fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub(crate) fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// The tokens the server accepts.
#[derive(Debug)]
pub(crate) struct Identities {
    by_token: HashMap<String, Identity>,
    admin: Identity,
}

impl Default for Identities {
    fn default() -> Self {
        let mut identities = Self {
            by_token: HashMap::new(),
            admin: Identity {
                name: String::new(),
                groups: Vec::new(),
                token: String::new(),
            },
        };
        identities.admin = identities.user(ADMIN, &[MASTERS]);
        identities
    }
}

impl Identities {
    /// The administrator: in `system:masters`, so allowed everything.
    pub(crate) fn admin(&self) -> Identity {
        self.admin.clone()
    }

    /// The user `name` in `groups` (and `system:authenticated`); the same identity each time
    /// it is asked for with the same groups.
    pub(crate) fn user(&mut self, name: &str, groups: &[&str]) -> Identity {
        let mut groups: Vec<String> = groups
            .iter()
            .filter(|group| **group != AUTHENTICATED)
            .map(|group| (*group).to_owned())
            .collect();
        groups.push(AUTHENTICATED.to_owned());
        if let Some(known) = self
            .by_token
            .values()
            .find(|known| known.name == name && known.groups == groups)
        {
            return known.clone();
        }
        let identity = Identity {
            name: name.to_owned(),
            groups,
            token: format!("fluxhook-test-{:016x}{:016x}", random_u64(), random_u64()),
        };
        self.by_token
            .insert(identity.token.clone(), identity.clone());
        identity
    }

    /// The ServiceAccount `namespace/name`.
    pub(crate) fn service_account(&mut self, namespace: &str, name: &str) -> Identity {
        let namespace_group = format!("{SERVICE_ACCOUNTS}:{namespace}");
        self.user(
            &service_account_user(namespace, name),
            &[SERVICE_ACCOUNTS, &namespace_group],
        )
    }

    /// The user a request's `Authorization: Bearer` token names; anonymous without one;
    /// 401 Unauthorized for a token the server does not know.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<User, ApiError> {
        let Some(token) = bearer_token(headers) else {
            return Ok(User::anonymous());
        };
        self.by_token
            .get(token)
            .map(|identity| User {
                name: identity.name.clone(),
                groups: identity.groups.clone(),
            })
            .ok_or_else(|| ApiError::with_code(401, "Unauthorized"))
    }
}

/// The token of an `Authorization: Bearer <token>` header; any other header is not this
/// authenticator's, and an empty token is no token.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderValue;

    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn tokens_authenticate_their_users() {
        let mut identities = Identities::default();
        let sa = identities.service_account("flux-system", "fluxhook-receiver");
        let user = identities
            .authenticate(&with_authorization(&format!("Bearer {}", sa.token())))
            .unwrap();
        assert_eq!(
            user.name,
            "system:serviceaccount:flux-system:fluxhook-receiver"
        );
        assert!(user.in_group("system:serviceaccounts:flux-system"));
        assert!(user.in_group(AUTHENTICATED));
        assert_eq!(
            identities.service_account("flux-system", "fluxhook-receiver"),
            sa
        );
        assert_ne!(
            identities.service_account("default", "fluxhook-receiver"),
            sa
        );
        let admin = identities
            .authenticate(&with_authorization(&format!(
                "bearer {}",
                identities.admin().token()
            )))
            .unwrap();
        assert!(admin.in_group(MASTERS));
    }

    #[test]
    fn no_token_is_anonymous_and_an_unknown_one_unauthorized() {
        let identities = Identities::default();
        for headers in [
            HeaderMap::new(),
            with_authorization("Basic dXNlcjpwYXNz"),
            with_authorization("Bearer "),
        ] {
            let user = identities.authenticate(&headers).unwrap();
            assert_eq!(user.name, ANONYMOUS);
            assert_eq!(user.groups, [UNAUTHENTICATED]);
        }
        let error = identities
            .authenticate(&with_authorization("Bearer guessed"))
            .unwrap_err();
        assert_eq!(
            (error.code, error.reason, error.message.as_str()),
            (401, "Unauthorized", "Unauthorized")
        );
    }
}
