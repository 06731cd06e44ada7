//! A Receiver compiled into what serving its webhook needs.

use std::collections::BTreeMap;
use std::fmt;

use fluxhook_api::{
    OidcProvider, Receiver, ReceiverResource, ReceiverType, WebhookPath, condition, flux_kind,
    webhook_path,
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
        /// How the sender signs.
        policy: Policy,
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
            Self::Signed { policy, .. } => f
                .debug_struct("Signed")
                .field("policy", policy)
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
}

impl Endpoint {
    /// Validates `receiver` with the data of its Secret (`None`: the Secret
    /// does not exist) and compiles what serving it needs.
    pub fn compile(
        receiver: &Receiver,
        secret: Option<&BTreeMap<String, Vec<u8>>>,
    ) -> Result<Self, InvalidReceiver> {
        let key = ReceiverKey::of(receiver);
        let spec = &receiver.spec;
        if let ReceiverType::Unknown(unknown) = &spec.type_ {
            return Err(InvalidReceiver::UnknownType(unknown.as_str().to_string()));
        }
        let resources = spec
            .resources
            .iter()
            .enumerate()
            .map(|(i, resource)| compile_resource(i, resource))
            .collect::<Result<_, _>>()?;
        let resource_filter = spec
            .resource_filter
            .as_deref()
            .map(|source| compile_filter("spec.resourceFilter", source))
            .transpose()?;

        let (credentials, token) = if spec.type_ == ReceiverType::GenericOidc {
            (Credentials::Oidc(compile_oidc(receiver)?), String::new())
        } else {
            let secret_name = spec
                .secret_ref
                .as_ref()
                .map(|r| r.name.clone())
                .ok_or(InvalidReceiver::MissingSecretRef)?;
            let data = secret.ok_or_else(|| InvalidReceiver::SecretNotFound {
                secret: secret_name.clone(),
            })?;
            let value = |key: &'static str| secret_value(data, &secret_name, key);
            let token = value(TOKEN_KEY)?;
            let credentials = match &spec.type_ {
                ReceiverType::Gcr => Credentials::GoogleIdToken {
                    email: value(GCR_EMAIL_KEY)?,
                    audience: value(GCR_AUDIENCE_KEY)?,
                },
                other => match Policy::for_receiver_type(other.as_str()) {
                    Some(policy) => Credentials::Signed {
                        policy,
                        token: token.clone().into_bytes(),
                    },
                    None => Credentials::PathOnly,
                },
            };
            (credentials, token)
        };

        Ok(Self {
            webhook_path: webhook_path(&token, &key.name, &key.namespace),
            key,
            receiver_type: spec.type_.clone(),
            events: spec.events.clone().unwrap_or_default(),
            credentials,
            resources,
            resource_filter,
        })
    }

    /// The path the sender posts to.
    pub fn webhook_path(&self) -> &WebhookPath {
        &self.webhook_path
    }

    /// Whether this Receiver handles `event`: Flux compares event types
    /// case-insensitively, for the types that filter on events.
    pub fn accepts_event(&self, event: &str) -> bool {
        !self.receiver_type.supports_events()
            || self.events.is_empty()
            || self.events.iter().any(|e| e.eq_ignore_ascii_case(event))
    }
}

fn compile_resource(
    index: usize,
    resource: &ReceiverResource,
) -> Result<ResourceTarget, InvalidReceiver> {
    let field = format!("spec.resources[{index}]");
    if resource.name == "*" && resource.match_labels.as_ref().is_none_or(|l| l.is_empty()) {
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
    let filter = resource
        .filter
        .as_deref()
        .map(|source| compile_filter(&format!("{field}.filter"), source))
        .transpose()?;
    Ok(ResourceTarget {
        resource: resource.clone(),
        filter,
    })
}

fn compile_filter(field: &str, source: &str) -> Result<Expression, InvalidReceiver> {
    Expression::compile(source).map_err(|error| InvalidReceiver::InvalidCel {
        field: field.to_string(),
        error,
    })
}

fn compile_oidc(receiver: &Receiver) -> Result<OidcTrust, InvalidReceiver> {
    let spec = &receiver.spec;
    if spec.secret_ref.is_some() {
        return Err(InvalidReceiver::OidcWithSecretRef);
    }
    let providers = spec.oidc_providers.clone().unwrap_or_default();
    if providers.is_empty() {
        return Err(InvalidReceiver::OidcWithoutProviders);
    }
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
    #[error("spec.secretRef is required when type is not generic-oidc")]
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
    /// A CEL expression does not compile.
    #[error("{field}: invalid CEL expression: {error}")]
    InvalidCel {
        /// Where, e.g. `spec.resourceFilter`.
        field: String,
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
    #[error("secretRef cannot be set when type is generic-oidc: remove it")]
    OidcWithSecretRef,
    /// generic-oidc needs at least one provider.
    #[error("generic-oidc receivers must define at least one entry in spec.oidcProviders")]
    OidcWithoutProviders,
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
            _ => condition::reason::VALIDATION_FAILED,
        }
    }
}
