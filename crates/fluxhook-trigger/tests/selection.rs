//! Forward and reverse selection agree: the objects a Receiver's entry selects
//! through the API server (`Trigger::select_with_metadata`, as the webhook
//! server and registration read them) are exactly those for which the reverse
//! question the controller asks of a changed object
//! (`ReceiverResource::selects`) answers yes.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use fluxhook_api::{Candidate, ReceiverResource};
use fluxhook_test_apiserver::{TestApiServer, fixtures};
use fluxhook_trigger::git_repository::{GROUP, KIND};
use fluxhook_trigger::{Trigger, TriggerError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

const NAMESPACES: [&str; 2] = ["flux-system", "apps"];

/// The GitRepositories of the cluster: `(namespace, name, labels)`.
fn universe() -> Vec<(&'static str, &'static str, BTreeMap<String, String>)> {
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut objects = Vec::new();
    for namespace in NAMESPACES {
        objects.push((namespace, "a", labels(&[("app", "x")])));
        objects.push((namespace, "b", labels(&[("app", "x"), ("tier", "t")])));
        objects.push((namespace, "c", labels(&[("app", "y")])));
        objects.push((namespace, "d", labels(&[])));
    }
    objects
}

/// A server holding [`universe`], and triggers allowing and forbidding
/// cross-namespace references.
async fn cluster() -> (TestApiServer, Trigger, Trigger) {
    let server = TestApiServer::start_flux(&NAMESPACES).await.unwrap();
    for (namespace, name, labels) in universe() {
        server
            .create(fixtures::git_repository(namespace, name, json!(labels)))
            .unwrap();
    }
    let client = server.kube_client().await.unwrap();
    let allowing = Trigger::new(client.clone());
    let forbidding = Trigger::new(client).no_cross_namespace_refs(true);
    (server, allowing, forbidding)
}

/// Entries of every shape: by name (present or not), `*` with or without
/// `matchLabels`, in no, an empty, the Receiver's or another namespace.
fn entries() -> impl Strategy<Value = ReceiverResource> {
    let name = prop_oneof![
        Just("a"),
        Just("b"),
        Just("c"),
        Just("d"),
        Just("missing"),
        Just("*")
    ];
    let namespace = prop_oneof![
        Just(None),
        Just(Some("")),
        Just(Some("flux-system")),
        Just(Some("apps")),
    ];
    let label = prop_oneof![
        Just(("app", "x")),
        Just(("app", "y")),
        Just(("app", "z")),
        Just(("tier", "t")),
    ];
    let match_labels = proptest::option::of(proptest::collection::vec(label, 0..3));
    let api_version = prop_oneof![Just(None), Just(Some("source.toolkit.fluxcd.io/v1"))];
    (name, namespace, match_labels, api_version).prop_map(
        |(name, namespace, match_labels, api_version)| ReceiverResource {
            api_version: api_version.map(str::to_owned),
            kind: KIND.to_owned(),
            name: name.to_owned(),
            namespace: namespace.map(str::to_owned),
            match_labels: match_labels.map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            }),
            filter: None,
        },
    )
}

/// What the trigger selects, as `(namespace, name)`: nothing when the entry
/// breaks a rule or names a missing object.
async fn forward(
    trigger: &Trigger,
    entry: &ReceiverResource,
    receiver_namespace: &str,
) -> Result<BTreeSet<(String, String)>, TestCaseError> {
    match trigger
        .select_with_metadata(entry, receiver_namespace)
        .await
    {
        Ok(selected) => Ok(selected
            .into_iter()
            .map(|s| (s.object.namespace, s.object.name))
            .collect()),
        Err(
            TriggerError::CrossNamespaceRef { .. }
            | TriggerError::WildcardWithoutMatchLabels { .. },
        ) => Ok(BTreeSet::new()),
        Err(error) if error.status().is_some_and(|status| status.code == 404) => {
            Ok(BTreeSet::new())
        }
        Err(error) => Err(TestCaseError::fail(format!("unexpected error: {error}"))),
    }
}

/// The objects for which the reverse question answers yes.
fn reverse(
    entry: &ReceiverResource,
    receiver_namespace: &str,
    no_cross_namespace_refs: bool,
) -> BTreeSet<(String, String)> {
    universe()
        .iter()
        .filter(|(namespace, name, labels)| {
            let candidate = Candidate {
                group: GROUP,
                kind: KIND,
                namespace,
                name,
                labels,
            };
            entry.selects(receiver_namespace, no_cross_namespace_refs, &candidate)
        })
        .map(|(namespace, name, _)| (namespace.to_string(), name.to_string()))
        .collect()
}

#[test]
fn forward_and_reverse_selection_agree() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_server, allowing, forbidding) = runtime.block_on(cluster());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    let cases = (
        entries(),
        prop_oneof![Just("flux-system"), Just("apps")],
        any::<bool>(),
    );
    runner
        .run(
            &cases,
            |(entry, receiver_namespace, no_cross_namespace_refs)| {
                let trigger = match no_cross_namespace_refs {
                    true => &forbidding,
                    false => &allowing,
                };
                let forward = runtime.block_on(forward(trigger, &entry, receiver_namespace))?;
                let reverse = reverse(&entry, receiver_namespace, no_cross_namespace_refs);
                prop_assert_eq!(
                    forward,
                    reverse,
                    "{:?} of a Receiver in {}",
                    entry,
                    receiver_namespace
                );
                Ok(())
            },
        )
        .unwrap();
}
