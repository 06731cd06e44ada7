//! Receivers read and written back unchanged, and the CRD kube derives from
//! the types.

#![allow(clippy::unwrap_used, clippy::panic)]

use fluxhook_api::{Receiver, ReceiverType, condition, resolve, webhook_path};
use kube::CustomResourceExt;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Reads `value` as a Receiver, writes it back, and checks nothing changed,
/// in either direction.
fn assert_round_trip(value: &Value) -> Receiver {
    let receiver: Receiver = serde_json::from_value(value.clone()).unwrap();
    let written = serde_json::to_value(&receiver).unwrap();
    assert_eq!(&written, value);
    let reread: Receiver =
        serde_json::from_str(&serde_json::to_string(&receiver).unwrap()).unwrap();
    assert_eq!(reread, receiver);
    receiver
}

/// The Receiver of `tests/flux_examples/<name>.yaml`, after the examples of Flux's Receiver
/// documentation (fluxcd/website, `content/en/flux/components/notification/receivers.md`).
fn example(name: &str) -> Value {
    let path = format!(
        "{}/tests/flux_examples/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[test]
fn maximal_receiver_round_trips() {
    let value = json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {
            "name": "everything",
            "namespace": "flux-system",
            "generation": 3,
            "labels": { "app": "web" },
            "annotations": { "reconcile.fluxcd.io/requestedAt": "2025-01-02T03:04:05Z" },
            "finalizers": ["finalizers.fluxcd.io"]
        },
        "spec": {
            "type": "github",
            "interval": "1h30m",
            "events": ["ping", "push"],
            "resources": [
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "name": "*",
                    "namespace": "apps",
                    "matchLabels": { "team": "a", "tier": "web" },
                    "filter": "res.metadata.name.startsWith('web')"
                },
                { "kind": "OCIRepository", "name": "manifests" }
            ],
            "resourceFilter": "req.ref == 'refs/heads/main'",
            "secretRef": { "name": "receiver-token" },
            "oidcProviders": [{
                "issuerURL": "https://token.actions.githubusercontent.com",
                "audience": "fluxhook",
                "variables": [{ "name": "owner", "expression": "claims.repository_owner" }],
                "validations": [{ "expression": "vars.owner == 'org'", "message": "wrong owner" }]
            }],
            "suspend": false
        },
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": "Receiver initialized for path: /hook/abc",
                    "lastTransitionTime": "2022-11-16T23:43:38Z",
                    "observedGeneration": 3
                },
                {
                    "type": "Reconciling",
                    "status": "False",
                    "reason": "Progressing",
                    "message": "",
                    "lastTransitionTime": "2022-11-16T23:43:37Z"
                }
            ],
            "webhookPath": "/hook/bed6d00b5555b1603e1f59b94d7fdbca58089cb5663633fb83f2815dc626d92b",
            "observedGeneration": 3,
            "lastHandledReconcileAt": "2025-01-02T03:04:05Z"
        }
    });
    let receiver = assert_round_trip(&value);
    assert_eq!(receiver.spec.type_, ReceiverType::GitHub);
    assert_eq!(receiver.spec.interval().unwrap().as_secs(), 5400);
    assert!(!receiver.spec.is_suspended());
    assert!(receiver.is_ready());
    let status = receiver.status.as_ref().unwrap();
    assert_eq!(
        status.condition(condition::RECONCILING).unwrap().reason,
        "Progressing"
    );
    let providers = receiver.spec.oidc_providers.as_ref().unwrap();
    assert_eq!(providers[0].audience_or_default(), "fluxhook");
}

#[test]
fn flux_github_example_round_trips() {
    let value = example("github");
    let receiver = assert_round_trip(&value);
    assert_eq!(receiver.spec.events.as_deref().unwrap(), ["ping", "push"]);
    assert_eq!(
        receiver.spec.secret_ref.as_ref().unwrap().name,
        "receiver-token"
    );
    assert_eq!(receiver.spec.interval().unwrap().as_secs(), 600);
    assert!(!receiver.is_ready());
    assert_eq!(
        receiver.webhook_path("t"),
        webhook_path("t", "github-receiver", "flux-system")
    );
}

#[test]
fn flux_gitlab_example_round_trips() {
    let value = example("gitlab");
    let receiver = assert_round_trip(&value);
    assert_eq!(receiver.spec.type_.event_header(), Some("X-Gitlab-Event"));
    assert_eq!(receiver.spec.resources.len(), 2);
}

#[test]
fn flux_generic_hmac_and_image_examples_round_trip() {
    for value in [
        example("generic-hmac"),
        example("harbor"),
        example("label-filter"),
    ] {
        let receiver = assert_round_trip(&value);
        for resource in &receiver.spec.resources {
            resolve(resource.api_version.as_deref(), &resource.kind).unwrap();
        }
    }
}

#[test]
fn generic_oidc_receiver_round_trips() {
    let value = example("generic-oidc");
    let receiver = assert_round_trip(&value);
    assert_eq!(receiver.spec.type_, ReceiverType::GenericOidc);
    assert!(!receiver.spec.type_.requires_secret());
    assert!(receiver.spec.secret_ref.is_none());
    let provider = &receiver.spec.oidc_providers.as_ref().unwrap()[0];
    assert_eq!(
        provider.audience_or_default(),
        fluxhook_api::DEFAULT_OIDC_AUDIENCE
    );
    assert_eq!(
        receiver.webhook_path(""),
        webhook_path("", "github-actions", "flux-system")
    );
}

#[test]
fn unknown_type_is_kept_and_shown_as_unknown() {
    let value = json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": { "name": "r", "namespace": "ns" },
        "spec": { "type": "gitea", "secretRef": { "name": "s" }, "resources": [] }
    });
    let receiver = assert_round_trip(&value);
    assert!(!receiver.spec.type_.is_known());
    assert_eq!(receiver.spec.type_.as_str(), "gitea");
}

#[test]
fn malformed_receivers_are_errors() {
    for value in [
        json!({ "metadata": {}, "spec": { "resources": [] } }),
        json!({ "metadata": {}, "spec": { "type": 1, "resources": [] } }),
        json!({ "metadata": {}, "spec": { "type": "github" } }),
        json!({ "metadata": {}, "spec": { "type": "github", "resources": [{ "kind": "Bucket" }] } }),
        json!({ "metadata": {}, "spec": { "type": "github", "resources": [], "suspend": "yes" } }),
        json!([]),
    ] {
        assert!(
            serde_json::from_value::<Receiver>(value.clone()).is_err(),
            "{value}"
        );
    }
}

/// Every property path of a schema: `.a.b`, `[]` for array items, `{}` for
/// map values.
fn property_paths(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            let p = format!("{path}.{name}");
            out.push(p.clone());
            property_paths(sub, &p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        property_paths(items, &format!("{path}[]"), out);
    }
    if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        property_paths(values, &format!("{path}{{}}"), out);
    }
}

#[test]
fn crd_has_flux_names_and_property_paths() {
    let crd = serde_json::to_value(Receiver::crd()).unwrap();
    assert_eq!(
        crd["metadata"]["name"],
        "receivers.notification.toolkit.fluxcd.io"
    );
    assert_eq!(crd["spec"]["group"], "notification.toolkit.fluxcd.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(
        crd["spec"]["names"],
        json!({
            "categories": ["all", "fluxcd", "fluxcd-notifications"],
            "kind": "Receiver",
            "plural": "receivers",
            "singular": "receiver"
        })
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1");
    assert_eq!(version["subresources"], json!({ "status": {} }));

    let schema = &version["schema"]["openAPIV3Schema"];
    let mut paths = Vec::new();
    property_paths(schema, "", &mut paths);
    paths.sort();
    // The property paths of Flux's receivers CRD (notification-controller v1).
    let mut flux = vec![
        ".apiVersion",
        ".kind",
        ".metadata",
        ".spec",
        ".spec.events",
        ".spec.interval",
        ".spec.oidcProviders",
        ".spec.oidcProviders[].audience",
        ".spec.oidcProviders[].issuerURL",
        ".spec.oidcProviders[].validations",
        ".spec.oidcProviders[].validations[].expression",
        ".spec.oidcProviders[].validations[].message",
        ".spec.oidcProviders[].variables",
        ".spec.oidcProviders[].variables[].expression",
        ".spec.oidcProviders[].variables[].name",
        ".spec.resourceFilter",
        ".spec.resources",
        ".spec.resources[].apiVersion",
        ".spec.resources[].filter",
        ".spec.resources[].kind",
        ".spec.resources[].matchLabels",
        ".spec.resources[].name",
        ".spec.resources[].namespace",
        ".spec.secretRef",
        ".spec.secretRef.name",
        ".spec.suspend",
        ".spec.type",
        ".status",
        ".status.conditions",
        ".status.conditions[].lastTransitionTime",
        ".status.conditions[].message",
        ".status.conditions[].observedGeneration",
        ".status.conditions[].reason",
        ".status.conditions[].status",
        ".status.conditions[].type",
        ".status.lastHandledReconcileAt",
        ".status.observedGeneration",
        ".status.webhookPath",
    ];
    flux.sort_unstable();
    assert_eq!(paths, flux);

    let spec = &schema["properties"]["spec"];
    assert_eq!(spec["required"], json!(["resources", "type"]));
    assert_eq!(spec["properties"]["interval"]["default"], "10m");
    assert_eq!(
        spec["properties"]["interval"]["pattern"],
        r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
    );
    assert_eq!(
        spec["properties"]["type"]["enum"].as_array().unwrap().len(),
        13
    );
    assert_eq!(
        spec["x-kubernetes-validations"].as_array().unwrap().len(),
        4
    );
}

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

/// `value` under `key` when there is one.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

fn labels() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(text(), text(), 0..3).prop_map(|m| json!(m))
}

fn resource() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("GitRepository".to_owned()),
        Just("Kustomization".to_owned()),
        text()
    ];
    (
        proptest::option::of(text()),
        kind,
        text(),
        proptest::option::of(text()),
        proptest::option::of(labels()),
        proptest::option::of(text()),
    )
        .prop_map(
            |(api_version, kind, name, namespace, match_labels, filter)| {
                let mut m = Map::new();
                put(&mut m, "apiVersion", api_version.map(Value::from));
                m.insert("kind".into(), kind.into());
                m.insert("name".into(), name.into());
                put(&mut m, "namespace", namespace.map(Value::from));
                put(&mut m, "matchLabels", match_labels);
                put(&mut m, "filter", filter.map(Value::from));
                Value::Object(m)
            },
        )
}

fn oidc_provider() -> impl Strategy<Value = Value> {
    let variable = (text(), text())
        .prop_map(|(name, expression)| json!({ "name": name, "expression": expression }));
    let validation = (text(), text())
        .prop_map(|(expression, message)| json!({ "expression": expression, "message": message }));
    (
        text(),
        proptest::option::of(text()),
        proptest::option::of(prop::collection::vec(variable, 0..3)),
        prop::collection::vec(validation, 0..3),
    )
        .prop_map(|(issuer, audience, variables, validations)| {
            let mut m = Map::new();
            m.insert("issuerURL".into(), issuer.into());
            put(&mut m, "audience", audience.map(Value::from));
            put(&mut m, "variables", variables.map(Value::from));
            m.insert("validations".into(), validations.into());
            Value::Object(m)
        })
}

fn spec() -> impl Strategy<Value = Value> {
    let type_ = prop_oneof![
        prop::sample::select(ReceiverType::KNOWN.to_vec()).prop_map(|t| t.as_str().to_owned()),
        text()
    ];
    (
        type_,
        proptest::option::of(text()),
        proptest::option::of(prop::collection::vec(text(), 0..4)),
        prop::collection::vec(resource(), 0..4),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(prop::collection::vec(oidc_provider(), 0..3)),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(type_, interval, events, resources, resource_filter, secret, providers, suspend)| {
                let mut m = Map::new();
                m.insert("type".into(), type_.into());
                put(&mut m, "interval", interval.map(Value::from));
                put(&mut m, "events", events.map(Value::from));
                m.insert("resources".into(), resources.into());
                put(&mut m, "resourceFilter", resource_filter.map(Value::from));
                put(
                    &mut m,
                    "secretRef",
                    secret.map(|name| json!({ "name": name })),
                );
                put(&mut m, "oidcProviders", providers.map(Value::from));
                put(&mut m, "suspend", suspend.map(Value::from));
                Value::Object(m)
            },
        )
}

/// An RFC 3339 UTC time with whole seconds, formatted by hand.
fn time() -> impl Strategy<Value = String> {
    (
        1970u32..=9999,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
    )
        .prop_map(|(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
}

fn condition() -> impl Strategy<Value = Value> {
    let status = prop_oneof![Just("True".to_owned()), Just("False".to_owned()), text()];
    (
        text(),
        status,
        text(),
        text(),
        time(),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(type_, status, reason, message, time, generation)| {
            let mut m = Map::new();
            m.insert("type".into(), type_.into());
            m.insert("status".into(), status.into());
            m.insert("reason".into(), reason.into());
            m.insert("message".into(), message.into());
            m.insert("lastTransitionTime".into(), time.into());
            put(&mut m, "observedGeneration", generation.map(Value::from));
            Value::Object(m)
        })
}

fn status() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(prop::collection::vec(condition(), 0..3)),
        proptest::option::of(text()),
        proptest::option::of(any::<i64>()),
        proptest::option::of(text()),
    )
        .prop_map(|(conditions, path, generation, handled)| {
            let mut m = Map::new();
            put(&mut m, "conditions", conditions.map(Value::from));
            put(&mut m, "webhookPath", path.map(Value::from));
            put(&mut m, "observedGeneration", generation.map(Value::from));
            put(&mut m, "lastHandledReconcileAt", handled.map(Value::from));
            Value::Object(m)
        })
}

fn receiver() -> impl Strategy<Value = Value> {
    (
        text(),
        text(),
        proptest::option::of(labels()),
        proptest::option::of(labels()),
        spec(),
        proptest::option::of(status()),
    )
        .prop_map(|(name, namespace, labels, annotations, spec, status)| {
            let mut metadata = Map::new();
            metadata.insert("name".into(), name.into());
            metadata.insert("namespace".into(), namespace.into());
            put(&mut metadata, "labels", labels);
            put(&mut metadata, "annotations", annotations);
            let mut m = Map::new();
            m.insert(
                "apiVersion".into(),
                "notification.toolkit.fluxcd.io/v1".into(),
            );
            m.insert("kind".into(), "Receiver".into());
            m.insert("metadata".into(), Value::Object(metadata));
            m.insert("spec".into(), spec);
            put(&mut m, "status", status);
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_receiver_round_trips(value in receiver()) {
        let receiver: Receiver = serde_json::from_value(value.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&receiver).unwrap(), value);
        let text = serde_json::to_string(&receiver).unwrap();
        prop_assert_eq!(serde_json::from_str::<Receiver>(&text).unwrap(), receiver);
    }

    #[test]
    fn reading_arbitrary_json_never_panics(text in ".*|\\{\"metadata\":\\{\\},\"spec\":.{0,40}") {
        let _ = serde_json::from_str::<Receiver>(&text);
    }
}
