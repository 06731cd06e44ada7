//! Renders every kustomization of `deploy/` with `kubectl kustomize` and
//! checks what an operator gets: each document strictly typed, and the
//! objects wired together as the overlays promise. Needs kubectl (see the
//! crate's documentation); `.ci/run` runs it.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use fluxhook_manifests::{
    Component, Manifests, Overlay, base_resources, render, render_base, strict,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

const NAMESPACE: &str = "flux-system";
const NAME: &str = "fluxhook-receiver";
const RECEIVER_CRD: &str = "receivers.notification.toolkit.fluxcd.io";

/// Renders, failing with the error's message (e.g. how to install kubectl).
fn rendered(overlay: Overlay, components: &[Component]) -> Manifests {
    render(overlay, components).unwrap_or_else(|error| panic!("{error}"))
}

fn rendered_base() -> Manifests {
    render_base().unwrap_or_else(|error| panic!("{error}"))
}

/// Every kustomization an operator can apply: the overlays alone and with
/// each component, and the base.
fn every_rendering() -> Vec<Manifests> {
    let mut all = vec![rendered_base()];
    for overlay in Overlay::ALL {
        all.push(rendered(overlay, &[]));
        for component in Component::ALL {
            all.push(rendered(overlay, &[component]));
        }
    }
    all
}

#[test]
fn every_rendered_document_is_strictly_its_kubernetes_type() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for manifests in every_rendering() {
        assert!(
            !manifests.documents().is_empty(),
            "{} renders nothing",
            manifests.origin()
        );
        for document in manifests.documents() {
            checked += 1;
            if let Err(error) = strict::check(document) {
                failures.push(error.to_string());
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 20, "only {checked} documents checked");
}

#[test]
fn each_overlay_installs_its_objects_in_the_flux_namespace() {
    let expected = |overlay| -> Vec<(&str, &str)> {
        let mut objects = vec![
            ("ServiceAccount", NAME),
            ("Deployment", NAME),
            ("PodDisruptionBudget", NAME),
            ("NetworkPolicy", NAME),
        ];
        match overlay {
            Overlay::Standalone => {
                objects.push(("Service", "webhook-receiver"));
                objects.push(("CustomResourceDefinition", RECEIVER_CRD));
            }
            Overlay::BesideNotificationController => objects.push(("Service", NAME)),
        }
        objects
    };
    for overlay in Overlay::ALL {
        let manifests = rendered(overlay, &[]);
        for (kind, name) in expected(overlay) {
            assert!(
                manifests.find(kind, name).is_some(),
                "{}: no {kind} {name}",
                manifests.origin()
            );
        }
        for document in manifests.documents() {
            let cluster_scoped = matches!(
                document.kind(),
                "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
            );
            let expected_namespace = (!cluster_scoped).then_some(NAMESPACE);
            assert_eq!(
                document.namespace(),
                expected_namespace,
                "{}: {} {}",
                manifests.origin(),
                document.kind(),
                document.name()
            );
        }
    }
    // notification-controller keeps its own webhook-receiver Service and CRD.
    let beside = rendered(Overlay::BesideNotificationController, &[]);
    assert!(beside.find("Service", "webhook-receiver").is_none());
    assert!(
        beside
            .documents()
            .iter()
            .all(|d| d.kind() != "CustomResourceDefinition")
    );
}

#[test]
fn every_object_carries_flux_labels_so_the_flux_cli_finds_it() {
    for overlay in Overlay::ALL {
        let manifests = rendered(overlay, &[]);
        for document in manifests.documents() {
            let labels = &document.value()["metadata"]["labels"];
            // `flux logs`, `flux check`, `flux uninstall` select part-of=flux.
            assert_eq!(
                labels["app.kubernetes.io/part-of"],
                "flux",
                "{} {}",
                document.kind(),
                document.name()
            );
            assert_eq!(labels["app.kubernetes.io/instance"], NAMESPACE);
        }
        let template_labels = pod_labels_of(&manifests);
        for (key, value) in [
            ("app", NAME),
            ("app.kubernetes.io/component", NAME),
            ("app.kubernetes.io/part-of", "flux"),
        ] {
            assert_eq!(template_labels.get(key).map(String::as_str), Some(value));
        }
    }
}

/// The labels of the receiver's pods, from its Deployment's template.
fn pod_labels_of(manifests: &Manifests) -> BTreeMap<String, String> {
    let deployment: Deployment = manifests.object(NAME).unwrap();
    deployment
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .labels
        .unwrap()
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn manager(deployment: &Deployment) -> &Container {
    let pod = pod_spec(deployment);
    assert_eq!(pod.containers.len(), 1);
    assert_eq!(pod.containers[0].name, "manager");
    &pod.containers[0]
}

#[test]
fn the_deployment_runs_two_replicas_as_flux_runs_its_controllers() {
    for overlay in Overlay::ALL {
        let manifests = rendered(overlay, &[]);
        let deployment: Deployment = manifests.object(NAME).unwrap();
        let spec = deployment.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(2));
        let pod = pod_spec(&deployment);
        assert_eq!(pod.service_account_name.as_deref(), Some(NAME));
        manifests.object::<ServiceAccount>(NAME).unwrap();

        // Replicas spread over nodes.
        let anti = pod
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .unwrap();
        assert_eq!(
            anti[0].pod_affinity_term.topology_key,
            "kubernetes.io/hostname"
        );
        assert_eq!(
            anti[0]
                .pod_affinity_term
                .label_selector
                .as_ref()
                .unwrap()
                .match_labels,
            spec.selector.match_labels
        );

        let container = manager(&deployment);
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        assert_eq!(
            security.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );

        let ports: BTreeMap<&str, i32> = container
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref().unwrap(), p.container_port))
            .collect();
        assert_eq!(
            ports,
            BTreeMap::from([
                ("healthz", 9440),
                ("http-prom", 8080),
                ("http-webhook", 9292)
            ])
        );
        for (probe, path) in [
            (&container.liveness_probe, "/healthz"),
            (&container.readiness_probe, "/readyz"),
        ] {
            let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
            assert_eq!(get.path.as_deref(), Some(path));
            assert_eq!(get.port, IntOrString::String("healthz".to_string()));
        }

        let env = container.env.as_ref().unwrap();
        let namespace = env.iter().find(|e| e.name == "RUNTIME_NAMESPACE").unwrap();
        let field = namespace
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap();
        assert_eq!(field.field_path, "metadata.namespace");

        let resources = container.resources.as_ref().unwrap();
        for key in ["cpu", "memory"] {
            assert!(resources.requests.as_ref().unwrap().contains_key(key));
            assert!(resources.limits.as_ref().unwrap().contains_key(key));
        }
    }
}

#[test]
fn the_grace_period_outlasts_the_pre_stop_sleep_and_the_drain() {
    // The drain bound of the binary, as it stops on SIGTERM (the binary replaces the
    // library server's default with it).
    let drain = fluxhook_receiver::SIGTERM_DRAIN;
    let guide = std::fs::read_to_string(
        fluxhook_manifests::deploy_dir()
            .parent()
            .unwrap()
            .join("docs/deploy.md"),
    )
    .unwrap();
    for overlay in Overlay::ALL {
        let deployment: Deployment = rendered(overlay, &[]).object(NAME).unwrap();
        let pod = pod_spec(&deployment);
        let pre_stop = manager(&deployment)
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref())
            .and_then(|h| h.sleep.as_ref())
            .map_or(0, |s| s.seconds);
        let grace = pod.termination_grace_period_seconds.unwrap();
        let needed = Duration::from_secs(u64::try_from(pre_stop).unwrap()) + drain;
        assert!(
            Duration::from_secs(u64::try_from(grace).unwrap()) > needed,
            "{}: terminationGracePeriodSeconds {grace} does not outlast the preStop sleep \
             ({pre_stop} s) and the drain ({drain:?})",
            overlay.name()
        );
        // docs/deploy.md states the three as they are.
        for stated in [
            format!("`preStop` sleep of {pre_stop} s"),
            format!("for at most {} s", drain.as_secs()),
            format!("`terminationGracePeriodSeconds` is {grace}"),
        ] {
            assert!(
                guide.contains(&stated),
                "docs/deploy.md does not say {stated:?}"
            );
        }
    }
}

#[test]
fn the_service_the_budget_and_the_policy_select_the_receiver_pods() {
    for overlay in Overlay::ALL {
        let manifests = rendered(overlay, &[]);
        let pod_labels = pod_labels_of(&manifests);
        let selects = |selector: &BTreeMap<String, String>| {
            !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
        };

        let service_name = match overlay {
            Overlay::Standalone => "webhook-receiver",
            Overlay::BesideNotificationController => NAME,
        };
        let service: Service = manifests.object(service_name).unwrap();
        let spec = service.spec.unwrap();
        assert!(selects(spec.selector.as_ref().unwrap()));
        let ports = spec.ports.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 80);
        assert_eq!(
            ports[0].target_port,
            Some(IntOrString::String("http-webhook".to_string()))
        );

        let budget: PodDisruptionBudget = manifests.object(NAME).unwrap();
        let budget = budget.spec.unwrap();
        assert!(selects(
            budget
                .selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()
        ));
        assert_eq!(budget.min_available, Some(IntOrString::Int(1)));

        let policy: NetworkPolicy = manifests.object(NAME).unwrap();
        let policy = policy.spec.unwrap();
        assert!(selects(
            policy
                .pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()
        ));
        let admitted: Vec<IntOrString> = policy
            .ingress
            .iter()
            .flatten()
            .flat_map(|rule| rule.ports.iter().flatten())
            .filter_map(|port| port.port.clone())
            .collect();
        assert_eq!(admitted, [IntOrString::Int(9292), IntOrString::Int(8080)]);
        assert_eq!(
            policy.policy_types.as_deref(),
            Some(&["Ingress".to_string()][..])
        );
    }
}

fn args(manifests: &Manifests) -> Vec<String> {
    let deployment: Deployment = manifests.object(NAME).unwrap();
    manager(&deployment).args.clone().unwrap()
}

#[test]
fn beside_notification_controller_writes_nothing_on_receivers() {
    let standalone = args(&rendered(Overlay::Standalone, &[]));
    let beside = args(&rendered(Overlay::BesideNotificationController, &[]));
    assert!(standalone.contains(&"--enable-leader-election".to_string()));
    assert!(
        !standalone
            .iter()
            .any(|a| a.starts_with("--manage-receivers"))
    );
    // The base's arguments, without the leader election that gates no write,
    // and with --manage-receivers=false.
    let mut expected: Vec<String> = standalone
        .into_iter()
        .filter(|a| a != "--enable-leader-election")
        .collect();
    expected.push("--manage-receivers=false".to_string());
    assert_eq!(beside, expected);
}

#[test]
fn standalone_ships_the_receiver_crd_as_written() {
    let manifests = rendered(Overlay::Standalone, &[]);
    let rendered = manifests
        .find("CustomResourceDefinition", RECEIVER_CRD)
        .unwrap()
        .value()
        .clone();
    let file = Overlay::Standalone
        .dir()
        .join("notification.toolkit.fluxcd.io_receivers.yaml");
    let shipped =
        Manifests::parse("the shipped CRD", &std::fs::read_to_string(&file).unwrap()).unwrap();
    let shipped = shipped.documents()[0].value();
    // kustomize adds the installation labels and nothing else.
    let mut without_labels = rendered.clone();
    without_labels["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    assert_eq!(&without_labels, shipped);
    let crd: CustomResourceDefinition = manifests.object(RECEIVER_CRD).unwrap();
    assert_eq!(crd.spec.group, "notification.toolkit.fluxcd.io");
    assert!(
        crd.spec
            .versions
            .iter()
            .any(|v| v.name == "v1" && v.storage)
    );
}

#[test]
fn the_podmonitor_scrapes_the_metrics_port_of_the_receiver_pods() {
    for overlay in Overlay::ALL {
        let manifests = rendered(overlay, &[Component::PodMonitor]);
        let monitor = manifests.find("PodMonitor", NAME).unwrap().value();
        assert_eq!(monitor["metadata"]["namespace"], NAMESPACE);
        // Flux's monitoring example selects PodMonitors by these labels.
        assert_eq!(
            monitor["metadata"]["labels"]["app.kubernetes.io/component"],
            "monitoring"
        );
        let pod_labels = pod_labels_of(&manifests);
        let selector = monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap();
        for (key, value) in selector {
            assert_eq!(pod_labels.get(key).map(String::as_str), value.as_str());
        }
        assert_eq!(
            monitor["spec"]["podMetricsEndpoints"][0]["port"],
            "http-prom"
        );
        // The rest of the overlay is unchanged by the component.
        let without = rendered(overlay, &[]);
        assert_eq!(manifests.documents().len(), without.documents().len() + 1);
    }
}

/// The files `base_resources` reads (without kubectl) are what kustomize
/// renders, apart from what the base's transformers set: namespace, labels
/// and the image. Tests that read RBAC rules from them see the rendered rules.
#[test]
fn the_base_files_are_the_rendered_base_but_for_namespace_labels_and_image() {
    let rendered = rendered_base();
    let files = base_resources().unwrap();
    assert_eq!(files.documents().len(), rendered.documents().len());
    let strip = |value: &Value| -> Value {
        let mut value = value.clone();
        let metadata = value["metadata"].as_object_mut().unwrap();
        metadata.remove("namespace");
        metadata.remove("labels");
        if let Some(template) = value
            .pointer_mut("/spec/template/metadata")
            .and_then(Value::as_object_mut)
        {
            template.remove("labels");
        }
        if let Some(containers) = value
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        {
            for container in containers {
                container.as_object_mut().unwrap().remove("image");
            }
        }
        value
    };
    for file in files.documents() {
        let rendered = rendered
            .find(file.kind(), file.name())
            .unwrap_or_else(|| panic!("{} {} is not rendered", file.kind(), file.name()));
        assert_eq!(
            strip(rendered.value()),
            strip(file.value()),
            "{}",
            file.origin()
        );
    }
}

#[test]
fn the_image_is_the_release_of_this_version() {
    for overlay in Overlay::ALL {
        let deployment: Deployment = rendered(overlay, &[]).object(NAME).unwrap();
        assert_eq!(
            manager(&deployment).image.as_deref(),
            Some(
                format!(
                    "ghcr.io/fluxhook/fluxhook-receiver:v{}",
                    env!("CARGO_PKG_VERSION")
                )
                .as_str()
            )
        );
    }
}
