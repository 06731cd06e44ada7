//! A Receiver compiled into what serving its webhook needs.

use std::collections::BTreeMap;
use std::fmt;

use fluxhook_api::{
    Authentication, OidcProvider, Receiver, ReceiverResource, ReceiverSpec, ReceiverType,
    SelectorError, WebhookPath, condition, flux_kind, webhook_path,
};
use fluxhook_cel::{ClaimRules, CompileError, Expression, RuleCompileError};
use fluxhook_signature::Policy;

/// The Secret key holding a Receiver's token.
pub const TOKEN_KEY: &str = "token";
/// The Secret key holding the service account e-mail a `gcr` push must come from.
pub const GCR_EMAIL_KEY: &str = "email";
/// The Secret key holding the audience of a `gcr` push's ID token.
pub const GCR_AUDIENCE_KEY: &str = "audience";

/// A Receiver's namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverKey {
    /// The Receiver's namespace.
    pub namespace: String,
    /// The Receiver's name.
    pub name: String,
}

impl ReceiverKey {
    /// The key of `receiver`.
    pub fn of(receiver: &Receiver) -> Self {
        Self {
            namespace: receiver.metadata.namespace.clone().unwrap_or_default(),
            name: receiver.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ReceiverKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How a request proves it comes from the sender the Receiver expects.
pub enum Credentials {
    /// Knowing the webhook path is the only proof: `generic`, `dockerhub`,
    /// `quay`, `acr`, `cdevents`, as in Flux.
    PathOnly,
    /// A signature or shared token checked against the Secret's `token`.
    Signed {
        /// What checks it: the header and form the Receiver type's sender
        /// proves itself with.
        verifier: Policy,
        /// Flux's message when the check fails, before `: <why>`.
        refusal: &'static str,
        /// The Secret's token.
        token: Vec<u8>,
    },
    /// A Google-signed ID token for this audience and service account (`gcr`).
    GoogleIdToken {
        /// The `aud` the token must carry.
        audience: String,
        /// The `email` claim the token must carry.
        email: String,
    },
    /// An ID token from one of these issuers (`generic-oidc`).
    Oidc(OidcTrust),
}

// Tokens never reach logs.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PathOnly => f.write_str("PathOnly"),
            Self::Signed { verifier, .. } => f
                .debug_struct("Signed")
                .field("verifier", verifier)
                .field("token", &"<redacted>")
                .finish(),
            Self::GoogleIdToken { audience, email } => f
                .debug_struct("GoogleIdToken")
                .field("audience", audience)
                .field("email", email)
                .finish(),
            Self::Oidc(trust) => f.debug_tuple("Oidc").field(trust).finish(),
        }
    }
}

/// A `generic-oidc` Receiver's providers, with their claim rules compiled.
/// The providers are kept as the Receiver writes them, so a request hands
/// them to the token verifier without copying.
pub struct OidcTrust {
    providers: Vec<OidcProvider>,
    rules: Vec<ClaimRules>,
}

impl OidcTrust {
    /// The providers, as `spec.oidcProviders` lists them.
    pub fn providers(&self) -> &[OidcProvider] {
        &self.providers
    }

    /// The claim rules of the provider with this issuer URL (unique in a
    /// Receiver).
    pub fn rules_of(&self, issuer_url: &str) -> Option<&ClaimRules> {
        let position = self
            .providers
            .iter()
            .position(|p| p.issuer_url == issuer_url)?;
        self.rules.get(position)
    }
}

impl fmt::Debug for OidcTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<&str> = self
            .providers
            .iter()
            .map(|p| p.issuer_url.as_str())
            .collect();
        f.debug_struct("OidcTrust")
            .field("issuers", &issuers)
            .finish_non_exhaustive()
    }
}

/// A resource reference of the Receiver, with its own filter compiled.
#[derive(Debug)]
pub struct ResourceTarget {
    /// The reference as the Receiver writes it.
    pub resource: ReceiverResource,
    /// `resources[].filter`.
    pub filter: Option<Expression>,
}

/// A Receiver ready to serve: everything a request needs, validated and
/// compiled once when the Receiver or its Secret changes.
#[derive(Debug)]
pub struct Endpoint {
    /// The Receiver.
    pub key: ReceiverKey,
    /// Its type (never [`ReceiverType::Unknown`]).
    pub receiver_type: ReceiverType,
    /// `/hook/` + the digest of token, name and namespace.
    pub webhook_path: WebhookPath,
    /// The event types to handle; empty means all.
    pub events: Vec<String>,
    /// How requests prove they are genuine.
    pub credentials: Credentials,
    /// The objects to reconcile.
    pub resources: Vec<ResourceTarget>,
    /// `spec.resourceFilter`.
    pub resource_filter: Option<Expression>,
    /// Payload-aware targeting ([`MATCH_PAYLOAD_ANNOTATION`] is `"true"` on
    /// a Receiver of a Git host type): a push reconciles only the
    /// GitRepositories it can change.
    pub match_payload: bool,
}

/// The annotation that turns payload-aware targeting on for a Receiver of a
/// Git host type (`github`, `gitlab`, `bitbucket`) when `"true"`: a push
/// reconciles only the GitRepositories whose `spec.url` names the pushed
/// repository and whose `spec.ref` the pushed ref can change
/// (`fluxhook_payload::targeting`). Ignored on other types.
pub const MATCH_PAYLOAD_ANNOTATION: &str = "receivers.fluxhook.io/match-payload";

impl Endpoint {
    /// Validates `receiver` with the data of its Secret (`None`: the Secret
    /// does not exist) and compiles what serving it needs.
    ///
    /// The checks come in the order notification-controller's reconciler
    /// makes them (`internal/controller/receiver_controller.go`, v1.9), so
    /// a Receiver with several faults reports the one Flux reports: the
    /// filters' CEL, then the fields that depend on the type, then the OIDC
    /// providers or the Secret. The checks Flux makes only when a delivery
    /// comes (a wildcard without `matchLabels`, a kind without a default
    /// `apiVersion`) are made here too, before the providers and Secret.
    pub fn compile(
        receiver: &Receiver,
        secret: Option<&BTreeMap<String, Vec<u8>>>,
    ) -> Result<Self, InvalidReceiver> {
        let key = ReceiverKey::of(receiver);
        let spec = &receiver.spec;
        let authentication = spec.type_.authentication();
        if authentication == Authentication::Refused {
            return Err(InvalidReceiver::UnknownType(spec.type_.as_str().to_owned()));
        }
        let claims = spec.type_.filters_see_claims();
        let resource_filter = non_empty(spec.resource_filter.as_deref())
            .map(|source| compile_filter(FilterLocation::ResourceFilter, source, claims))
            .transpose()?;
        let filters = spec
            .resources
            .iter()
            .enumerate()
            .map(|(index, resource)| {
                non_empty(resource.filter.as_deref())
                    .map(|source| {
                        let location = FilterLocation::Resource {
                            index,
                            kind: resource.kind.clone(),
                            name: resource.name.clone(),
                        };
                        compile_filter(location, source, claims)
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        check_type_fields(spec, authentication)?;
        let resources = spec
            .resources
            .iter()
            .zip(filters)
            .enumerate()
            .map(|(index, (resource, filter))| target(index, resource, filter))
            .collect::<Result<_, _>>()?;

        // How the request proves itself, decided by the type's
        // `authentication()` alone: no wildcard arm, so a new way to
        // authenticate does not compile until it is handled here.
        let (credentials, token) = match authentication {
            Authentication::OidcProviders => {
                (Credentials::Oidc(compile_oidc(spec)?), String::new())
            }
            Authentication::Path => {
                let secret = SecretData::of(spec, secret)?;
                (Credentials::PathOnly, secret.value(TOKEN_KEY)?)
            }
            Authentication::Token { verifier, refusal } => {
                let secret = SecretData::of(spec, secret)?;
                let token = secret.value(TOKEN_KEY)?;
                let credentials = Credentials::Signed {
                    verifier,
                    refusal,
                    token: token.clone().into_bytes(),
                };
                (credentials, token)
            }
            Authentication::GoogleIdToken => {
                let secret = SecretData::of(spec, secret)?;
                let token = secret.value(TOKEN_KEY)?;
                let credentials = Credentials::GoogleIdToken {
                    email: secret.value(GCR_EMAIL_KEY)?,
                    audience: secret.value(GCR_AUDIENCE_KEY)?,
                };
                (credentials, token)
            }
            Authentication::Refused => {
                return Err(InvalidReceiver::UnknownType(spec.type_.as_str().to_owned()));
            }
        };

        Ok(Self {
            webhook_path: webhook_path(&token, &key.name, &key.namespace),
            key,
            receiver_type: spec.type_.clone(),
            events: spec.events.clone().unwrap_or_default(),
            credentials,
            resources,
            resource_filter,
            match_payload: matches!(spec.type_.payload(), fluxhook_api::Payload::GitEvent { .. })
                && receiver
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|annotations| annotations.get(MATCH_PAYLOAD_ANNOTATION))
                    .is_some_and(|value| value == "true"),
        })
    }

    /// The path the sender posts to.
    pub fn webhook_path(&self) -> &WebhookPath {
        &self.webhook_path
    }

    /// Whether this Receiver handles `event`: Flux compares event types
    /// with Go's `strings.EqualFold`, for the types that filter on events.
    pub fn accepts_event(&self, event: &str) -> bool {
        !self.receiver_type.supports_events()
            || self.events.is_empty()
            || self.events.iter().any(|e| equal_fold(e, event))
    }
}

/// Go's `strings.EqualFold`: the same characters under Unicode simple case
/// folding (`K` is `k`, the Kelvin sign too; `ſ` is `s`; `ς` is `σ`).
fn equal_fold(a: &str, b: &str) -> bool {
    /// A case mapping that gives one character, as simple folding does.
    fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
        let first = mapped.next()?;
        mapped.next().is_none().then_some(first)
    }
    let same = |x: char, y: char| {
        x == y
            || single(x.to_lowercase()).is_some_and(|l| Some(l) == single(y.to_lowercase()))
            || single(x.to_uppercase()).is_some_and(|u| Some(u) == single(y.to_uppercase()))
    };
    a.chars().count() == b.chars().count() && a.chars().zip(b.chars()).all(|(x, y)| same(x, y))
}

/// A CEL field Flux treats as unset when empty.
fn non_empty(source: Option<&str>) -> Option<&str> {
    source.filter(|source| !source.is_empty())
}

/// The cross-field rules of Flux's CRD, which its reconciler enforces again
/// for API servers that skip them (`validateOIDCSpec`).
fn check_type_fields(
    spec: &ReceiverSpec,
    authentication: Authentication,
) -> Result<(), InvalidReceiver> {
    let oidc = authentication == Authentication::OidcProviders;
    let has_providers = spec.oidc_providers.as_ref().is_some_and(|p| !p.is_empty());
    if oidc && !has_providers {
        return Err(InvalidReceiver::OidcWithoutProviders);
    }
    if !oidc && has_providers {
        return Err(InvalidReceiver::ProvidersWithoutOidc {
            receiver_type: spec.type_.as_str().to_owned(),
        });
    }
    if oidc && spec.secret_ref.is_some() {
        return Err(InvalidReceiver::OidcWithSecretRef);
    }
    if !oidc && spec.secret_ref.is_none() {
        return Err(InvalidReceiver::MissingSecretRef);
    }
    Ok(())
}

/// A resource reference checked for what Flux only finds out when a
/// delivery comes.
fn target(
    index: usize,
    resource: &ReceiverResource,
    filter: Option<Expression>,
) -> Result<ResourceTarget, InvalidReceiver> {
    let field = format!("spec.resources[{index}]");
    // Flux's rule (fluxhook-api): only an absent matchLabels is refused, `{}`
    // selects every object of the kind.
    if let Err(SelectorError::WildcardWithoutMatchLabels) = resource.names() {
        return Err(InvalidReceiver::WildcardWithoutMatchLabels {
            field,
            kind: resource.kind.clone(),
        });
    }
    let explicit = resource
        .api_version
        .as_deref()
        .is_some_and(|v| !v.is_empty());
    if !explicit
        && flux_kind(&resource.kind)
            .and_then(|k| k.receiver_default_api_version())
            .is_none()
    {
        return Err(InvalidReceiver::MissingApiVersion {
            field,
            kind: resource.kind.clone(),
        });
    }
    Ok(ResourceTarget {
        resource: resource.clone(),
        filter,
    })
}

/// Where a resource filter is written, as Flux's messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterLocation {
    /// `spec.resourceFilter`.
    ResourceFilter,
    /// `spec.resources[index].filter`.
    Resource {
        /// The position in `spec.resources`.
        index: usize,
        /// The reference's kind.
        kind: String,
        /// The reference's name.
        name: String,
    },
}

impl fmt::Display for FilterLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResourceFilter => f.write_str("resourceFilter expression"),
            Self::Resource { index, kind, name } => write!(
                f,
                "filter expression for resources[{index}] (kind={kind:?}, name={name:?})"
            ),
        }
    }
}

fn compile_filter(
    location: FilterLocation,
    source: &str,
    claims: bool,
) -> Result<Expression, InvalidReceiver> {
    let compiled = if claims {
        Expression::compile_with_claims(source)
    } else {
        Expression::compile(source)
    };
    compiled.map_err(|error| InvalidReceiver::InvalidCel { location, error })
}

fn compile_oidc(spec: &ReceiverSpec) -> Result<OidcTrust, InvalidReceiver> {
    let providers = spec.oidc_providers.clone().unwrap_or_default();
    check_providers(&providers)?;
    let rules = providers
        .iter()
        .map(|provider| {
            let variables = provider.variables.as_deref().unwrap_or_default();
            ClaimRules::compile(
                variables
                    .iter()
                    .map(|v| (v.name.as_str(), v.expression.as_str())),
                provider
                    .validations
                    .iter()
                    .map(|v| (v.expression.as_str(), v.message.as_str())),
            )
            .map_err(|error| InvalidReceiver::InvalidOidcRules {
                issuer: provider.issuer_url.clone(),
                error,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(OidcTrust { providers, rules })
}

/// The schema's constraints on `spec.oidcProviders`, checked again as Flux's
/// `ValidateOIDCProvidersSpec` does for API servers that skip them
/// (`internal/server/receiver_claims.go`, v1.9).
fn check_providers(providers: &[OidcProvider]) -> Result<(), InvalidReceiver> {
    let invalid =
        |index: usize, problem: String| InvalidReceiver::InvalidProvider { index, problem };
    let mut seen = std::collections::BTreeSet::new();
    for (i, provider) in providers.iter().enumerate() {
        let issuer = &provider.issuer_url;
        if issuer.is_empty() {
            return Err(invalid(i, ": issuerURL is required".to_owned()));
        }
        if !(issuer.starts_with("http://") || issuer.starts_with("https://")) {
            return Err(invalid(
                i,
                format!(": issuerURL {issuer:?} must start with http:// or https://"),
            ));
        }
        if !seen.insert(issuer.as_str()) {
            return Err(invalid(i, format!(": duplicate issuerURL {issuer:?}")));
        }
        if provider.validations.is_empty() {
            return Err(invalid(
                i,
                format!(
                    " (issuerURL={issuer:?}): at least one validation is required; without \
                     validations any caller able to obtain a token from this issuer can \
                     trigger the Receiver"
                ),
            ));
        }
        for (j, variable) in provider.variables.iter().flatten().enumerate() {
            if variable.name.is_empty() {
                return Err(invalid(
                    i,
                    format!(" (issuerURL={issuer:?}): variables[{j}]: name is required"),
                ));
            }
            if variable.expression.is_empty() {
                return Err(invalid(
                    i,
                    format!(
                        " (issuerURL={issuer:?}): variables[{j}] (name={:?}): expression is required",
                        variable.name
                    ),
                ));
            }
        }
        for (j, validation) in provider.validations.iter().enumerate() {
            if validation.expression.is_empty() {
                return Err(invalid(
                    i,
                    format!(" (issuerURL={issuer:?}): validations[{j}]: expression is required"),
                ));
            }
            if validation.message.is_empty() {
                return Err(invalid(
                    i,
                    format!(" (issuerURL={issuer:?}): validations[{j}]: message is required"),
                ));
            }
        }
    }
    Ok(())
}

/// A Receiver's Secret, for reading its keys.
struct SecretData<'a> {
    name: &'a str,
    data: &'a BTreeMap<String, Vec<u8>>,
}

impl<'a> SecretData<'a> {
    /// The Secret `spec.secretRef` names, which must exist.
    fn of(
        spec: &'a ReceiverSpec,
        data: Option<&'a BTreeMap<String, Vec<u8>>>,
    ) -> Result<Self, InvalidReceiver> {
        let name = spec
            .secret_ref
            .as_ref()
            .map(|r| r.name.as_str())
            .ok_or(InvalidReceiver::MissingSecretRef)?;
        let data = data.ok_or_else(|| InvalidReceiver::SecretNotFound {
            secret: name.to_owned(),
        })?;
        Ok(Self { name, data })
    }

    /// The text of `key`, which must be there and not empty.
    fn value(&self, key: &'static str) -> Result<String, InvalidReceiver> {
        secret_value(self.data, self.name, key)
    }
}

fn secret_value(
    data: &BTreeMap<String, Vec<u8>>,
    secret: &str,
    key: &'static str,
) -> Result<String, InvalidReceiver> {
    let missing = || InvalidReceiver::MissingSecretKey {
        secret: secret.to_string(),
        key,
    };
    let bytes = data.get(key).ok_or_else(missing)?;
    let value =
        String::from_utf8(bytes.clone()).map_err(|_| InvalidReceiver::SecretKeyNotText {
            secret: secret.to_string(),
            key,
        })?;
    if value.is_empty() {
        return Err(missing());
    }
    Ok(value)
}

/// Why a Receiver cannot be served. Each message says what to fix; none
/// contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum InvalidReceiver {
    /// `spec.type` is not a type Flux defines.
    #[error(
        "unsupported receiver type {0:?}: set spec.type to one of generic, generic-hmac, \
         generic-oidc, github, gitlab, bitbucket, harbor, dockerhub, quay, gcr, nexus, acr, cdevents"
    )]
    UnknownType(String),
    /// A type that needs a token has no `secretRef`.
    #[error("secretRef is required when type is not generic-oidc")]
    MissingSecretRef,
    /// The Secret does not exist.
    #[error("Secret {secret:?} not found: create it with a {TOKEN_KEY:?} key")]
    SecretNotFound {
        /// The Secret's name.
        secret: String,
    },
    /// The Secret lacks a key the type needs (or it is empty).
    #[error("Secret {secret:?} has no {key:?} key: add it")]
    MissingSecretKey {
        /// The Secret's name.
        secret: String,
        /// The key.
        key: &'static str,
    },
    /// A Secret value is not UTF-8 text.
    #[error("the {key:?} key of Secret {secret:?} is not UTF-8 text")]
    SecretKeyNotText {
        /// The Secret's name.
        secret: String,
        /// The key.
        key: &'static str,
    },
    /// `name: '*'` selects every object of a kind, so it needs labels to narrow it.
    #[error("{field}: name '*' selects every {kind}; add matchLabels to say which")]
    WildcardWithoutMatchLabels {
        /// Where, e.g. `spec.resources[0]`.
        field: String,
        /// The kind it names.
        kind: String,
    },
    /// A kind with no default apiVersion is named without one.
    #[error("{field}: kind {kind} has no default apiVersion; set apiVersion")]
    MissingApiVersion {
        /// Where, e.g. `spec.resources[0]`.
        field: String,
        /// The kind it names.
        kind: String,
    },
    /// A resource filter does not compile (for a type other than
    /// `generic-oidc`, naming `claims` is enough).
    #[error("invalid {location}: {error}")]
    InvalidCel {
        /// Which filter.
        location: FilterLocation,
        /// What is wrong with it.
        error: CompileError,
    },
    /// A generic-oidc provider's variables or validations do not compile.
    #[error("spec.oidcProviders[issuerURL={issuer}]: {error}")]
    InvalidOidcRules {
        /// The provider's issuer URL.
        issuer: String,
        /// What is wrong.
        error: RuleCompileError,
    },
    /// generic-oidc takes its trust from oidcProviders, not a Secret.
    #[error("secretRef cannot be set when type is generic-oidc")]
    OidcWithSecretRef,
    /// generic-oidc needs at least one provider.
    #[error("generic-oidc receiver requires at least one oidcProvider")]
    OidcWithoutProviders,
    /// Only generic-oidc takes its trust from OIDC providers.
    #[error(
        "oidcProviders can only be set when type is generic-oidc (type is {receiver_type:?}): \
         remove them or change the type"
    )]
    ProvidersWithoutOidc {
        /// The Receiver's type.
        receiver_type: String,
    },
    /// An OIDC provider breaks a rule of the CRD's schema.
    #[error("oidcProviders[{index}]{problem}")]
    InvalidProvider {
        /// The provider's position in `spec.oidcProviders`.
        index: usize,
        /// What is wrong, as Flux words it (after the index).
        problem: String,
    },
}

impl InvalidReceiver {
    /// The reason Flux gives on the `Ready` condition for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. }
            | Self::MissingSecretKey { .. }
            | Self::SecretKeyNotText { .. } => condition::reason::TOKEN_NOT_FOUND,
            Self::InvalidCel { .. } | Self::InvalidOidcRules { .. } => {
                condition::reason::INVALID_CEL_EXPRESSION
            }
            Self::UnknownType(_)
            | Self::MissingSecretRef
            | Self::WildcardWithoutMatchLabels { .. }
            | Self::MissingApiVersion { .. }
            | Self::OidcWithSecretRef
            | Self::OidcWithoutProviders
            | Self::ProvidersWithoutOidc { .. }
            | Self::InvalidProvider { .. } => condition::reason::VALIDATION_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use serde_json::{Value, json};

    fn receiver(spec: Value) -> Receiver {
        serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "r", "namespace": "flux-system"},
            "spec": spec
        }))
        .unwrap()
    }

    fn secret() -> BTreeMap<String, Vec<u8>> {
        [
            (TOKEN_KEY, "t0ken"),
            (GCR_EMAIL_KEY, "push@p.iam.gserviceaccount.com"),
            (GCR_AUDIENCE_KEY, "https://hooks.example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect()
    }

    /// Payload-aware targeting is on for `"true"` on a Git host type only.
    #[test]
    fn match_payload_is_read_from_the_annotation_on_git_host_types() {
        let annotated = |type_: &str, value: Option<&str>| {
            let mut receiver = receiver(json!({
                "type": type_, "secretRef": {"name": "token"},
                "resources": [{"kind": "GitRepository", "name": "app"}]
            }));
            if let Some(value) = value {
                receiver.metadata.annotations = Some(BTreeMap::from([(
                    MATCH_PAYLOAD_ANNOTATION.to_owned(),
                    value.to_owned(),
                )]));
            }
            Endpoint::compile(&receiver, Some(&secret()))
                .unwrap()
                .match_payload
        };
        for type_ in ["github", "gitlab", "bitbucket"] {
            assert!(annotated(type_, Some("true")), "{type_}");
            assert!(!annotated(type_, None), "{type_}");
            assert!(!annotated(type_, Some("false")), "{type_}");
            assert!(!annotated(type_, Some("yes")), "{type_}");
        }
        for type_ in ["generic", "generic-hmac", "harbor", "dockerhub"] {
            assert!(!annotated(type_, Some("true")), "{type_}");
        }
    }

    /// The spec Flux's CRD admits for `type_`, selecting one GitRepository.
    fn spec_of(type_: &ReceiverType) -> Value {
        let mut spec = json!({
            "type": type_.as_str(),
            "resources": [{"kind": "GitRepository", "name": "app"}]
        });
        if *type_ == ReceiverType::GenericOidc {
            spec["oidcProviders"] = json!([{
                "issuerURL": "https://token.actions.githubusercontent.com",
                "validations": [{"expression": "claims.sub == 'x'", "message": "no"}]
            }]);
        } else {
            spec["secretRef"] = json!({"name": "token"});
        }
        spec
    }

    fn compile(spec: Value) -> Result<Endpoint, InvalidReceiver> {
        Endpoint::compile(&receiver(spec), Some(&secret()))
    }

    /// Fail closed: every type Flux knows gets the proof Flux asks of it,
    /// only the five types Flux serves on the path alone are served
    /// without one, and a type Flux does not know is never served.
    #[test]
    fn every_type_is_served_with_the_proof_flux_asks_or_not_at_all() {
        let path_only = ["generic", "dockerhub", "quay", "acr", "cdevents"];
        for type_ in ReceiverType::KNOWN {
            let endpoint = compile(spec_of(&type_)).unwrap_or_else(|e| panic!("{type_}: {e}"));
            let credentials = &endpoint.credentials;
            match (type_.authentication(), credentials) {
                (Authentication::Path, Credentials::PathOnly)
                | (Authentication::Token { .. }, Credentials::Signed { .. })
                | (Authentication::GoogleIdToken, Credentials::GoogleIdToken { .. })
                | (Authentication::OidcProviders, Credentials::Oidc(_)) => {}
                (expected, got) => panic!("{type_}: {expected:?} served as {got:?}"),
            }
            assert_eq!(
                matches!(credentials, Credentials::PathOnly),
                path_only.contains(&type_.as_str()),
                "{type_}: {credentials:?}"
            );
            if let Credentials::Signed {
                verifier, token, ..
            } = credentials
            {
                assert!(
                    matches!(
                        type_.authentication(),
                        Authentication::Token { verifier: own, .. } if own == *verifier
                    ),
                    "{type_}: {verifier:?}"
                );
                assert_eq!(token, b"t0ken");
            }
        }
        for unknown in ["gitea", "GitHub", "", "generic "] {
            let mut spec = spec_of(&ReceiverType::Generic);
            spec["type"] = json!(unknown);
            assert!(
                matches!(compile(spec), Err(InvalidReceiver::UnknownType(t)) if t == unknown),
                "{unknown:?}"
            );
        }
    }

    #[test]
    fn claims_are_declared_for_generic_oidc_filters_only() {
        for type_ in ReceiverType::KNOWN {
            for field in ["resourceFilter", "filter"] {
                let mut spec = spec_of(&type_);
                let filter = json!("claims.sub == 'ci' && res.metadata.name == 'app'");
                if field == "resourceFilter" {
                    spec["resourceFilter"] = filter;
                } else {
                    spec["resources"][0]["filter"] = filter;
                }
                let compiled = compile(spec);
                if type_ == ReceiverType::GenericOidc {
                    assert!(compiled.is_ok(), "{type_} {field}: {compiled:?}");
                    continue;
                }
                let error = compiled.unwrap_err();
                assert_eq!(error.reason(), condition::reason::INVALID_CEL_EXPRESSION);
                let message = error.to_string();
                assert!(
                    message.contains("undeclared reference to 'claims'"),
                    "{type_}: {message}"
                );
                let location = if field == "resourceFilter" {
                    "invalid resourceFilter expression: "
                } else {
                    "invalid filter expression for resources[0] (kind=\"GitRepository\", name=\"app\"): "
                };
                assert!(message.starts_with(location), "{message}");
            }
        }
    }

    #[test]
    fn empty_filters_are_no_filters_as_in_flux() {
        let mut spec = spec_of(&ReceiverType::Generic);
        spec["resourceFilter"] = json!("");
        spec["resources"][0]["filter"] = json!("");
        let endpoint = compile(spec).unwrap();
        assert!(endpoint.resource_filter.is_none());
        assert!(endpoint.resources[0].filter.is_none());
    }

    #[test]
    fn oidc_providers_belong_to_generic_oidc_only() {
        let providers = spec_of(&ReceiverType::GenericOidc)["oidcProviders"].clone();
        for type_ in ReceiverType::KNOWN {
            if type_ == ReceiverType::GenericOidc {
                continue;
            }
            let mut spec = spec_of(&type_);
            spec["oidcProviders"] = providers.clone();
            let error = compile(spec).unwrap_err();
            assert!(
                matches!(&error, InvalidReceiver::ProvidersWithoutOidc { receiver_type } if *receiver_type == type_.as_str()),
                "{type_}: {error}"
            );
            assert_eq!(error.reason(), condition::reason::VALIDATION_FAILED);
            assert!(
                error
                    .to_string()
                    .starts_with("oidcProviders can only be set when type is generic-oidc")
            );
            // An empty list is no providers, as in Flux.
            let mut spec = spec_of(&type_);
            spec["oidcProviders"] = json!([]);
            assert!(compile(spec).is_ok(), "{type_}");
        }
    }

    #[test]
    fn oidc_providers_are_checked_as_flux_checks_them() {
        let provider = |issuer: &str| json!({"issuerURL": issuer, "validations": [{"expression": "true", "message": "m"}]});
        let cases = [
            (
                json!([provider("")]),
                "oidcProviders[0]: issuerURL is required",
            ),
            (
                json!([provider("token.example.com")]),
                "oidcProviders[0]: issuerURL \"token.example.com\" must start with http:// or https://",
            ),
            (
                json!([provider("https://a"), provider("https://a")]),
                "oidcProviders[1]: duplicate issuerURL \"https://a\"",
            ),
            (
                json!([{"issuerURL": "https://a", "validations": []}]),
                "oidcProviders[0] (issuerURL=\"https://a\"): at least one validation is required",
            ),
            (
                json!([{"issuerURL": "https://a", "variables": [{"name": "", "expression": "1"}],
                        "validations": [{"expression": "true", "message": "m"}]}]),
                "oidcProviders[0] (issuerURL=\"https://a\"): variables[0]: name is required",
            ),
            (
                json!([{"issuerURL": "https://a",
                        "validations": [{"expression": "true", "message": ""}]}]),
                "oidcProviders[0] (issuerURL=\"https://a\"): validations[0]: message is required",
            ),
        ];
        for (providers, message) in cases {
            let mut spec = spec_of(&ReceiverType::GenericOidc);
            spec["oidcProviders"] = providers;
            let error = compile(spec).unwrap_err();
            assert_eq!(error.reason(), condition::reason::VALIDATION_FAILED);
            assert!(error.to_string().starts_with(message), "{error}");
        }
    }

    #[test]
    fn events_compare_as_go_equal_fold() {
        for (a, b, equal) in [
            ("Push Hook", "push hook", true),
            ("repo:refs_changed", "REPO:REFS_CHANGED", true),
            ("kind", "\u{212A}IND", true),
            ("ſpush", "Spush", true),
            ("σ", "ς", true),
            ("push", "pushes", false),
            ("push", "pusH ", false),
            ("ß", "ss", false),
            ("i", "\u{130}", false),
        ] {
            assert_eq!(equal_fold(a, b), equal, "{a} {b}");
        }
    }

    #[test]
    fn a_wildcard_needs_match_labels_but_they_may_be_empty() {
        let mut spec = spec_of(&ReceiverType::Generic);
        spec["resources"][0]["name"] = json!("*");
        assert!(matches!(
            compile(spec.clone()),
            Err(InvalidReceiver::WildcardWithoutMatchLabels { .. })
        ));
        spec["resources"][0]["matchLabels"] = json!({});
        assert!(compile(spec).is_ok());
    }
}
