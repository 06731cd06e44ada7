//! Conformance with Flux's own CRDs (`../shared/flux-crds`): our Receiver type
//! accepts and writes back every field Flux defines, and the kinds table agrees
//! with every CRD's names.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;

use fluxhook_api::{Receiver, ReceiverType, flux_kind, resolve};
use fluxhook_corpus::FluxCrds;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

fn crds() -> FluxCrds {
    FluxCrds::locate().unwrap_or_else(|e| panic!("{e}"))
}

/// The schema of the version the API server stores.
fn storage_version(crd: &Value) -> &Value {
    crd["spec"]["versions"]
        .as_array()
        .and_then(|versions| versions.iter().find(|v| v["storage"] == true))
        .unwrap_or_else(|| panic!("CRD {} has no storage version", crd["metadata"]["name"]))
}

fn schema_of(version: &Value) -> &Value {
    &version["schema"]["openAPIV3Schema"]
}

/// Every property path a schema defines, e.g. `spec.resources[].matchLabels{}`.
fn property_paths(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, sub) in properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            out.insert(path.clone());
            property_paths(sub, &path, out);
        }
    }
    if schema["items"].is_object() {
        property_paths(&schema["items"], &format!("{prefix}[]"), out);
    }
    if schema["additionalProperties"].is_object() {
        property_paths(
            &schema["additionalProperties"],
            &format!("{prefix}{{}}"),
            out,
        );
    }
}

/// A value for `schema` with every property it defines set: the fullest
/// object Flux's API server would accept.
fn exemplar(name: &str, schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str() {
        Some("object") => {
            let mut object = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (field, sub) in properties {
                    object.insert(field.clone(), exemplar(field, sub));
                }
            }
            if schema["additionalProperties"].is_object() {
                object.insert(
                    "example.com/key".into(),
                    exemplar(name, &schema["additionalProperties"]),
                );
            }
            // `metadata` is left open by CRDs: give it what every object has.
            if name == "metadata" && object.is_empty() {
                object.insert("name".into(), json!("webhook"));
                object.insert("namespace".into(), json!("flux-system"));
            }
            Value::Object(object)
        }
        Some("array") => json!([exemplar(name, &schema["items"])]),
        Some("integer") => json!(3),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        Some("string") => json!(match (name, schema["format"].as_str()) {
            (_, Some("date-time")) => "2026-11-24T06:55:00Z",
            ("interval" | "timeout", _) => "5m",
            ("reason", _) => "Succeeded",
            ("type", _) => "Ready",
            ("apiVersion", _) => "notification.toolkit.fluxcd.io/v1",
            ("kind", _) => "Receiver",
            _ => "value",
        }),
        other => panic!("property {name}: unexpected schema type {other:?}"),
    }
}

#[test]
fn receiver_defines_the_same_fields_as_fluxs_crd() {
    let flux = crds().read("receivers.yaml").unwrap();
    let mut flux_paths = BTreeSet::new();
    property_paths(schema_of(storage_version(&flux)), "", &mut flux_paths);

    let ours = serde_json::to_value(Receiver::crd()).unwrap();
    let mut our_paths = BTreeSet::new();
    property_paths(schema_of(storage_version(&ours)), "", &mut our_paths);

    let missing: Vec<_> = flux_paths.difference(&our_paths).collect();
    let extra: Vec<_> = our_paths.difference(&flux_paths).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "Receiver's schema differs from Flux's: missing {missing:?}, extra {extra:?}"
    );
    // listKind is left out: the API server derives it from kind.
    for name in ["kind", "plural", "singular", "shortNames", "categories"] {
        assert_eq!(
            ours["spec"]["names"][name], flux["spec"]["names"][name],
            "names.{name}"
        );
    }
    assert_eq!(ours["spec"]["group"], flux["spec"]["group"]);
    assert_eq!(ours["spec"]["scope"], flux["spec"]["scope"]);
}

#[test]
fn receiver_round_trips_every_field_of_fluxs_crd() {
    let flux = crds().read("receivers.yaml").unwrap();
    let full = exemplar("", schema_of(storage_version(&flux)));
    let receiver: Receiver = serde_json::from_value(full.clone())
        .unwrap_or_else(|e| panic!("a Receiver with every field set is refused: {e}\n{full:#}"));
    let written = serde_json::to_value(&receiver).unwrap();
    assert_eq!(
        written, full,
        "a Receiver with every field set changes on a round trip"
    );
}

#[test]
fn every_receiver_type_and_target_kind_flux_allows_is_known() {
    let flux = crds().read("receivers.yaml").unwrap();
    let spec = &schema_of(storage_version(&flux))["properties"]["spec"]["properties"];

    let types = spec["type"]["enum"].as_array().unwrap();
    assert!(!types.is_empty());
    for name in types {
        let parsed: ReceiverType = serde_json::from_value(name.clone()).unwrap();
        assert!(
            !matches!(parsed, ReceiverType::Unknown(_)),
            "receiver type {name} is not known"
        );
        assert_eq!(serde_json::to_value(&parsed).unwrap(), *name);
    }

    let kinds = spec["resources"]["items"]["properties"]["kind"]["enum"]
        .as_array()
        .unwrap();
    assert!(!kinds.is_empty());
    for kind in kinds {
        let kind = kind.as_str().unwrap();
        let known = flux_kind(kind).unwrap_or_else(|| panic!("kind {kind} is not in the table"));
        // Either a default apiVersion exists or an explicit one resolves.
        let resolved = resolve(None, kind)
            .or_else(|_| resolve(Some(known.api_version()), kind))
            .unwrap_or_else(|e| panic!("kind {kind} does not resolve: {e}"));
        assert_eq!(resolved.plural(), known.plural());
    }
}

#[test]
fn kinds_table_matches_every_flux_crd() {
    let all = crds().all().unwrap();
    assert!(
        all.len() >= 9,
        "expected Flux's nine CRDs, found {}",
        all.len()
    );
    for (file, crd) in &all {
        let names = &crd["spec"]["names"];
        let kind = names["kind"].as_str().unwrap();
        let known = flux_kind(kind).unwrap_or_else(|| panic!("{file}: kind {kind} not in table"));
        assert_eq!(known.plural(), names["plural"], "{file}: plural");
        assert_eq!(known.group(), crd["spec"]["group"], "{file}: group");
        assert_eq!(
            known.version(),
            storage_version(crd)["name"],
            "{file}: storage version"
        );
        assert_eq!(
            known.namespaced(),
            crd["spec"]["scope"] == "Namespaced",
            "{file}: scope"
        );
    }
}
