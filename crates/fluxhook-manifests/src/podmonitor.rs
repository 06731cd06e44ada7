//! prometheus-operator's PodMonitor, as a strict model for [`crate::strict`].
//!
//! The fields, their types and validation rules are those of prometheus-operator
//! v0.93.0 (`pkg/apis/monitoring/v1/podmonitor_types.go`, `types.go`,
//! `prometheus_types.go`, and the CRD generated from them,
//! `example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml`).
//! Every field of `spec` and of `podMetricsEndpoints[]` is modelled except the
//! scrape client's credentials and TLS (`authorization`, `basicAuth`,
//! `bearerTokenSecret`, `oauth2`, `tlsConfig`, `proxyConnectHeader`): those are
//! reported as not modelled rather than passed unchecked.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::strict::{Checked, field_path};

pub(crate) const API_VERSION: &str = "monitoring.coreos.com/v1";
pub(crate) const KIND: &str = "PodMonitor";
pub(crate) const SCHEMA: &str = "prometheus-operator v0.93.0's PodMonitor \
     (pkg/apis/monitoring/v1/podmonitor_types.go)";

/// Fields of `podMetricsEndpoints[]` prometheus-operator has and this model does not.
const NOT_MODELLED: &[&str] = &[
    "authorization",
    "basicAuth",
    "bearerTokenSecret",
    "oauth2",
    "tlsConfig",
    "proxyConnectHeader",
];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: PodMonitorSpec,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMonitorSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    job_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_target_labels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod_metrics_endpoints: Option<Vec<PodMetricsEndpoint>>,
    selector: LabelSelector,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector_mechanism: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_protocols: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_scrape_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_name_length_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_value_length_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_native_histograms: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_classic_histograms: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_histogram_bucket_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_histogram_min_bucket_factor: Option<Quantity>,
    #[serde(
        rename = "convertClassicHistogramsToNHCB",
        skip_serializing_if = "Option::is_none"
    )]
    convert_classic_histograms_to_nhcb: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_dropped_targets: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attach_metadata: Option<AttachMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_size_limit: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    any: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    match_names: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct AttachMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<bool>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodMetricsEndpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port_number: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_port: Option<IntOrString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    honor_labels: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    honor_timestamps: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    track_timestamps_staleness: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_relabelings: Option<Vec<RelabelConfig>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relabelings: Option<Vec<RelabelConfig>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_running: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_from_environment: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    follow_redirects: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enable_http2: Option<bool>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RelabelConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    source_labels: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    separator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modulus: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

/// The CRD's enums.
const SCHEMES: &[&str] = &["http", "https", "HTTP", "HTTPS"];
const SELECTOR_MECHANISMS: &[&str] = &["RelabelConfig", "RoleSelector"];
const SCRAPE_PROTOCOLS: &[&str] = &[
    "PrometheusProto",
    "OpenMetricsText0.0.1",
    "OpenMetricsText1.0.0",
    "PrometheusText0.0.4",
    "PrometheusText1.0.0",
];
const RELABEL_ACTIONS: &[&str] = &[
    "replace",
    "Replace",
    "keep",
    "Keep",
    "drop",
    "Drop",
    "hashmod",
    "HashMod",
    "labelmap",
    "LabelMap",
    "labeldrop",
    "LabelDrop",
    "labelkeep",
    "LabelKeep",
    "lowercase",
    "Lowercase",
    "uppercase",
    "Uppercase",
    "keepequal",
    "KeepEqual",
    "dropequal",
    "DropEqual",
];

pub(crate) fn roundtrip(value: &Value) -> Result<Checked, String> {
    let monitor: PodMonitor = serde_path_to_error::deserialize(value).map_err(|e| e.to_string())?;
    let mut invalid = Vec::new();
    if monitor.api_version != API_VERSION || monitor.kind != KIND {
        invalid.push(format!(
            "apiVersion/kind: {} {} is not {API_VERSION} {KIND}",
            monitor.api_version, monitor.kind
        ));
    }
    validate(&monitor.spec, &mut invalid);
    let mut checked = serde_json::to_value(&monitor).map_err(|e| e.to_string())?;
    // Fields prometheus-operator has but this model leaves out are named as
    // such (and kept, so they are not also reported as unknown).
    if let (Some(input), Some(output)) = (
        value["spec"]["podMetricsEndpoints"].as_array(),
        checked["spec"]["podMetricsEndpoints"].as_array_mut(),
    ) {
        for (index, (endpoint, kept)) in input.iter().zip(output).enumerate() {
            for field in NOT_MODELLED {
                if let (Some(v), Some(kept)) = (endpoint.get(*field), kept.as_object_mut()) {
                    kept.insert(field.to_string(), v.clone());
                    invalid.push(format!(
                        "{}: a PodMonitor field fluxhook-manifests does not model; model it \
                         before using it",
                        field_path(&format!("spec.podMetricsEndpoints[{index}]"), field)
                    ));
                }
            }
        }
    }
    Ok(Checked {
        value: checked,
        invalid,
    })
}

fn validate(spec: &PodMonitorSpec, invalid: &mut Vec<String>) {
    let mut one_of = |path: String, value: &Option<String>, allowed: &[&str]| {
        if let Some(value) = value
            && !allowed.contains(&value.as_str())
        {
            invalid.push(format!("{path}: {value:?} is not one of {allowed:?}"));
        }
    };
    one_of(
        "spec.selectorMechanism".to_string(),
        &spec.selector_mechanism,
        SELECTOR_MECHANISMS,
    );
    one_of(
        "spec.fallbackScrapeProtocol".to_string(),
        &spec.fallback_scrape_protocol,
        SCRAPE_PROTOCOLS,
    );
    for (index, protocol) in spec.scrape_protocols.iter().flatten().enumerate() {
        one_of(
            format!("spec.scrapeProtocols[{index}]"),
            &Some(protocol.clone()),
            SCRAPE_PROTOCOLS,
        );
    }
    for (index, endpoint) in spec.pod_metrics_endpoints.iter().flatten().enumerate() {
        let at = format!("spec.podMetricsEndpoints[{index}]");
        one_of(format!("{at}.scheme"), &endpoint.scheme, SCHEMES);
        for (list, configs) in [
            ("relabelings", &endpoint.relabelings),
            ("metricRelabelings", &endpoint.metric_relabelings),
        ] {
            for (i, config) in configs.iter().flatten().enumerate() {
                one_of(
                    format!("{at}.{list}[{i}].action"),
                    &config.action,
                    RELABEL_ACTIONS,
                );
            }
        }
    }
    for (index, endpoint) in spec.pod_metrics_endpoints.iter().flatten().enumerate() {
        let at = format!("spec.podMetricsEndpoints[{index}]");
        if let Some(port) = endpoint.port_number
            && !(1..=65535).contains(&port)
        {
            invalid.push(format!("{at}.portNumber: {port} is not within 1..=65535"));
        }
        for (field, duration) in [
            ("interval", &endpoint.interval),
            ("scrapeTimeout", &endpoint.scrape_timeout),
        ] {
            if let Some(duration) = duration
                && !is_duration(duration)
            {
                invalid.push(format!(
                    "{at}.{field}: {duration:?} is not a Prometheus duration (e.g. 30s, 1m30s)"
                ));
            }
        }
        for (list, configs) in [
            ("relabelings", &endpoint.relabelings),
            ("metricRelabelings", &endpoint.metric_relabelings),
        ] {
            for (i, config) in configs.iter().flatten().enumerate() {
                if config.modulus.is_some_and(|m| m < 0) {
                    invalid.push(format!("{at}.{list}[{i}].modulus: must be >= 0"));
                }
            }
        }
    }
    for (field, limit) in [
        ("sampleLimit", spec.sample_limit),
        ("targetLimit", spec.target_limit),
        ("labelLimit", spec.label_limit),
        ("labelNameLengthLimit", spec.label_name_length_limit),
        ("labelValueLengthLimit", spec.label_value_length_limit),
        (
            "nativeHistogramBucketLimit",
            spec.native_histogram_bucket_limit,
        ),
        ("keepDroppedTargets", spec.keep_dropped_targets),
    ] {
        if limit.is_some_and(|l| l < 0) {
            invalid.push(format!("spec.{field}: must be >= 0"));
        }
    }
    if spec.scrape_class.as_deref() == Some("") {
        invalid.push("spec.scrapeClass: must not be empty".to_string());
    }
    if let Some(size) = &spec.body_size_limit
        && !is_byte_size(size)
    {
        invalid.push(format!(
            "spec.bodySizeLimit: {size:?} is not a size such as 512MB or 1GiB"
        ));
    }
}

/// The CRD's Duration pattern:
/// `^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`.
fn is_duration(text: &str) -> bool {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    if text == "0" {
        return true;
    }
    let mut rest = text;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let letters = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let unit = &rest[..letters];
        match UNITS[next_unit..].iter().position(|u| *u == unit) {
            Some(position) => next_unit += position + 1,
            None => return false,
        }
        rest = &rest[letters..];
    }
    true
}

/// The CRD's ByteSize pattern: `(^0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B)$`.
fn is_byte_size(text: &str) -> bool {
    if text == "0" {
        return true;
    }
    let Some(number_and_unit) = text.strip_suffix('B') else {
        return false;
    };
    let number = number_and_unit
        .strip_suffix('i')
        .and_then(|n| n.strip_suffix(['K', 'M', 'G', 'T', 'E', 'P']))
        .or_else(|| number_and_unit.strip_suffix(['K', 'M', 'G', 'T', 'E', 'P']))
        .unwrap_or(number_and_unit);
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => ("", number),
    };
    whole.chars().all(|c| c.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Manifests, strict};

    const MONITOR: &str = "\
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: m
spec:
  selector:
    matchLabels: {app: a}
  podMetricsEndpoints:
    - port: http-prom
      interval: 1m30s
      relabelings:
        - sourceLabels: [__meta_kubernetes_pod_phase]
          action: keep
          regex: Running
";

    fn problems(yaml: &str) -> Vec<String> {
        let manifests = Manifests::parse("test", yaml).unwrap();
        match strict::check(&manifests.documents()[0]) {
            Ok(()) => Vec::new(),
            Err(error) => error.problems,
        }
    }

    #[test]
    fn a_valid_podmonitor_passes() {
        assert_eq!(problems(MONITOR), Vec::<String>::new());
    }

    #[test]
    fn misspelled_and_invalid_fields_are_reported() {
        assert_eq!(
            problems(&MONITOR.replace("- port:", "- prot:")),
            ["spec.podMetricsEndpoints[0].prot: unknown field"]
        );
        assert_eq!(
            problems(&MONITOR.replace("action: keep", "action: Keeep")),
            [format!(
                "spec.podMetricsEndpoints[0].relabelings[0].action: \"Keeep\" is not one of {RELABEL_ACTIONS:?}"
            )]
        );
        assert_eq!(
            problems(&MONITOR.replace("1m30s", "90sec")),
            [
                "spec.podMetricsEndpoints[0].interval: \"90sec\" is not a Prometheus duration (e.g. 30s, 1m30s)"
            ]
        );
        assert_eq!(
            problems(&MONITOR.replace("1m30s", "90")),
            ["spec.podMetricsEndpoints[0].interval: invalid type: integer `90`, expected a string"]
        );
        let found = problems(&MONITOR.replace("  selector:\n    matchLabels: {app: a}\n", ""));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("missing field `selector`"), "{found:?}");
        assert_eq!(
            problems(&MONITOR.replace(
                "- port: http-prom",
                "- port: http-prom\n      tlsConfig: {}"
            )),
            [
                "spec.podMetricsEndpoints[0].tlsConfig: a PodMonitor field fluxhook-manifests does not model; model it before using it"
            ]
        );
    }

    #[test]
    fn durations_and_sizes_follow_the_crd_patterns() {
        for good in ["0", "30s", "1m30s", "1h", "15d", "1y2w", "500ms", "1s500ms"] {
            assert!(is_duration(good), "{good}");
        }
        for bad in ["90", "s", "1s1m", "1m1m", "1 s", "-1s", "1.5s"] {
            assert!(!is_duration(bad), "{bad}");
        }
        for good in ["0", "512MB", "1GiB", "1.5KB", "10B", ".5MB"] {
            assert!(is_byte_size(good), "{good}");
        }
        for bad in ["512", "1GIB", "MB", "1.MB", "1 MB"] {
            assert!(!is_byte_size(bad), "{bad}");
        }
    }
}
