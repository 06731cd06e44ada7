#![allow(clippy::unwrap_used, clippy::panic)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fluxhook_receiver::{ReceiverKey, reconcile_span};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// A writer that keeps what is written, for a test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Captured {
    type Writer = Captured;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The lines `log` writes with `encoding`, every level enabled.
fn capture(encoding: LogEncoding, log: impl FnOnce()) -> Vec<String> {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::TRACE)
        .with(FluxLayer::new(encoding, captured.clone()));
    tracing::subscriber::with_default(subscriber, log);
    captured.lines()
}

fn json_lines(log: impl FnOnce()) -> Vec<serde_json::Map<String, Value>> {
    capture(LogEncoding::Json, log)
        .iter()
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(object)) => object,
            other => panic!("not a JSON object: {line}: {other:?}"),
        })
        .collect()
}

fn key() -> ReceiverKey {
    ReceiverKey {
        namespace: "flux-system".into(),
        name: "github".into(),
    }
}

/// The span the webhook handler opens for a request to the Receiver `namespace/name`
/// (whose type is its name here), as `server::handler` fills it.
fn webhook_span(namespace: &str, name: &str) -> tracing::Span {
    tracing::info_span!(
        target: "fluxhook_receiver::server::handler",
        "webhook",
        namespace,
        name,
        r#type = name,
    )
}

#[test]
fn reconcile_lines_carry_controller_runtimes_fields() {
    let raw = capture(LogEncoding::Json, || {
        let _entered = reconcile_span(&key()).entered();
        tracing::info!(target: "fluxhook_receiver::controller::reconcile", "Reconciliation finished");
    });
    let [raw] = &raw[..] else { panic!("{raw:?}") };
    let line: serde_json::Map<String, Value> = serde_json::from_str(raw).unwrap();
    assert_eq!(
        flux_logs::keys(raw),
        [
            "level",
            "ts",
            "msg",
            "controller",
            "controllerGroup",
            "controllerKind",
            "Receiver",
            "namespace",
            "name",
            "reconcileID"
        ],
        "{raw}"
    );
    assert_eq!(line["level"], "info");
    assert_eq!(line["msg"], "Reconciliation finished");
    assert_eq!(line["controller"], "receiver");
    assert_eq!(line["controllerGroup"], "notification.toolkit.fluxcd.io");
    assert_eq!(line["controllerKind"], "Receiver");
    assert_eq!(
        line["Receiver"],
        serde_json::json!({"name": "github", "namespace": "flux-system"})
    );
    assert_eq!(line["namespace"], "flux-system");
    assert_eq!(line["name"], "github");
    let id = line["reconcileID"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(id.as_bytes()[14], b'4', "a version 4 UUID: {id}");
}

#[test]
fn each_reconciliation_has_its_own_id() {
    let lines = json_lines(|| {
        for _ in 0..2 {
            let _entered = reconcile_span(&key()).entered();
            tracing::info!("reconciled");
        }
    });
    assert_ne!(lines[0]["reconcileID"], lines[1]["reconcileID"]);
}

#[test]
fn levels_are_fluxs_and_warnings_are_errors() {
    let lines = json_lines(|| {
        tracing::trace!("t");
        tracing::debug!("d");
        tracing::info!("i");
        tracing::warn!("w");
        tracing::error!("e");
    });
    let levels: Vec<&str> = lines.iter().map(|l| l["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["trace", "debug", "info", "error", "error"]);
}

#[test]
fn log_level_error_keeps_warnings() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(filter(LogLevel::Error))
        .with(FluxLayer::new(LogEncoding::Json, captured.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "fluxhook_receiver::run", "not shown");
        tracing::warn!(target: "fluxhook_receiver::run", "shown");
        tracing::error!(target: "fluxhook_receiver::run", "shown too");
    });
    let lines = captured.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains(r#""level":"error""#)));
}

#[test]
fn the_time_is_zaps_iso8601_in_utc() {
    let at = |seconds: u64, millis: u64| {
        iso8601(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
    };
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    assert_eq!(at(1_709_251_199, 123), "2024-02-29T23:59:59.123Z");
    assert_eq!(at(4_102_444_800, 999), "2100-01-01T00:00:00.999Z");
    // The thread's last second is kept: its milliseconds change, then the
    // second, back and forth.
    assert_eq!(at(4_102_444_800, 1), "2100-01-01T00:00:00.001Z");
    assert_eq!(at(4_102_444_801, 1), "2100-01-01T00:00:01.001Z");
    assert_eq!(at(4_102_444_800, 2), "2100-01-01T00:00:00.002Z");
    assert_eq!(at(0, 7), "1970-01-01T00:00:00.007Z");

    let lines = json_lines(|| tracing::info!("now"));
    let ts = lines[0]["ts"].as_str().unwrap();
    let shape: String = ts
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{ts}");
}

#[test]
fn loggers_are_named_as_flux_names_them() {
    let lines = json_lines(|| {
        tracing::info!(target: "fluxhook_receiver::run", "starting");
        tracing::info!(target: "fluxhook_receiver", "main");
        tracing::info!(target: "fluxhook_receiver::server::limits", "refused");
        tracing::info!(target: "kube_runtime::watcher", "library");
        tracing::info!(target: "fluxhook_receiver::controller", "controller");
        tracing::info!(target: "fluxhook_receiver::run", logger = "custom", "named");
        let _entered = reconcile_span(&key()).entered();
        tracing::info!(target: "kube_client::client", "within a reconciliation");
    });
    let loggers: Vec<Option<&str>> = lines
        .iter()
        .map(|l| l.get("logger").and_then(Value::as_str))
        .collect();
    assert_eq!(
        loggers,
        [
            Some("setup"),
            Some("setup"),
            Some("receiver-server"),
            Some("runtime"),
            None,
            Some("custom"),
            None
        ]
    );
}

#[test]
fn webhook_lines_name_the_receiver_as_notification_controller_does() {
    let lines = json_lines(|| {
        let _entered = webhook_span("apps", "gitlab").entered();
        tracing::info!(target: "fluxhook_receiver::server::auth", "handling GitLab event: \"Push Hook\"");
        tracing::error!(target: "fluxhook_receiver::server::handler", code = 503u16, "unable to process request: receiver is suspended");
    });
    for line in &lines {
        assert_eq!(line["logger"], "receiver-server");
        assert_eq!(line["reconciler kind"], "Receiver");
        assert_eq!(line["name"], "gitlab");
        assert_eq!(line["namespace"], "apps");
        assert_eq!(line["type"], "gitlab");
    }
    assert_eq!(lines[1]["code"], 503);
}

/// The webhook server names the Receiver with fields of each line rather than a span (see
/// `fluxhook_receiver::server`): the lines read as they did with the span, key for key.
#[test]
fn webhook_lines_with_their_own_fields_read_as_with_the_span() {
    let without_time = |line: &String| {
        let start = line.find(",\"ts\":").unwrap();
        let end = start + line[start + 1..].find(',').unwrap() + 1;
        format!("{}{}", &line[..start], &line[end..])
    };
    let with_span = capture(LogEncoding::Json, || {
        let span = tracing::info_span!(
            target: "fluxhook_receiver::server::handler",
            "webhook",
            name = "gitlab",
            namespace = "apps",
            r#type = "gitlab",
            peer = "10.0.0.1:4242",
        );
        let _entered = span.entered();
        tracing::info!(target: "fluxhook_receiver::server::auth", "handling GitLab event: \"Push Hook\"");
        tracing::error!(target: "fluxhook_receiver::server::handler", error = "bad", "unable to validate payload");
        tracing::info!(target: "fluxhook_receiver::server::handler", code = 400u16, "webhook request answered");
    });
    let own_fields = capture(LogEncoding::Json, || {
        tracing::info!(target: "fluxhook_receiver::server::auth", name = "gitlab", namespace = "apps", r#type = "gitlab", peer = "10.0.0.1:4242", "handling GitLab event: \"Push Hook\"");
        tracing::error!(target: "fluxhook_receiver::server::handler", name = "gitlab", namespace = "apps", r#type = "gitlab", peer = "10.0.0.1:4242", error = "bad", "unable to validate payload");
        tracing::info!(target: "fluxhook_receiver::server::handler", name = "gitlab", namespace = "apps", r#type = "gitlab", peer = "10.0.0.1:4242", code = 400u16, "webhook request answered");
    });
    assert_eq!(with_span.len(), 3);
    assert_eq!(
        with_span.iter().map(without_time).collect::<Vec<_>>(),
        own_fields.iter().map(without_time).collect::<Vec<_>>()
    );
    assert!(
        with_span[2].ends_with(
            r#""logger":"receiver-server","msg":"webhook request answered","reconciler kind":"Receiver","name":"gitlab","namespace":"apps","type":"gitlab","peer":"10.0.0.1:4242","code":400}"#
        ),
        "{}",
        with_span[2]
    );
}

/// An error with a cause, as a kube or HTTP error has.
#[derive(Debug)]
struct RequestFailed(io::Error);

impl fmt::Display for RequestFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request failed")
    }
}

impl std::error::Error for RequestFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn errors_are_under_error_with_their_causes() {
    let raw = capture(LogEncoding::Json, || {
        let error = RequestFailed(io::Error::other("connection refused"));
        tracing::error!(
            error = &error as &(dyn std::error::Error + 'static),
            attempt = 2,
            "cannot reach the API server"
        );
        tracing::error!(error = %"plain", "displayed");
    });
    let lines: Vec<serde_json::Map<String, Value>> = raw
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["msg"], "cannot reach the API server");
    assert_eq!(lines[0]["error"], "request failed: connection refused");
    assert_eq!(
        flux_logs::keys(&raw[0]).last().map(String::as_str),
        Some("error")
    );
    assert_eq!(lines[1]["error"], "plain");
}

#[test]
fn console_lines_are_zaps_console_lines() {
    let lines = capture(LogEncoding::Console, || {
        tracing::info!(target: "fluxhook_receiver::run", addr = ":9292", "starting the webhook receiver server");
        let _entered = reconcile_span(&key()).entered();
        tracing::warn!(error = %"secret not found", "Reconciler error");
    });
    let first: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(first.len(), 5, "{first:?}");
    assert_eq!(first[1], "INFO");
    assert_eq!(first[2], "setup");
    assert_eq!(first[3], "starting the webhook receiver server");
    assert_eq!(first[4], r#"{"addr": ":9292"}"#);
    let second: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(second[1], "ERROR");
    assert_eq!(second[2], "Reconciler error");
    assert!(
        second[3].starts_with(r#"{"controller": "receiver", "controllerGroup": "#),
        "{}",
        second[3]
    );
    assert!(
        second[3].ends_with(r#""error": "secret not found"}"#),
        "{}",
        second[3]
    );
}

#[test]
fn keys_flux_logs_reads_stay_strings_and_unique() {
    let lines = capture(LogEncoding::Json, || {
        tracing::info!(
            name = 5,
            Namespace = true,
            LEVEL = "high",
            ts = 1.5,
            Msg = "m",
            controllerkind = "x",
            "odd fields"
        );
    });
    let entry = flux_logs::decode(&lines[0]).unwrap();
    assert_eq!(entry.message, "odd fields");
    assert_eq!(entry.level, "info");
    assert_eq!(entry.name, "5");
    let object: serde_json::Map<String, Value> = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(object["_Namespace"], true);
    assert_eq!(object["_LEVEL"], "high");
    assert_eq!(object["_ts"], 1.5);
    assert_eq!(object["_controllerkind"], "x");
}

/// A key renamed to one the line already has (`TS` written as `_TS`) is
/// written once, in the first one's place, with the later value.
#[test]
fn a_renamed_key_meeting_another_is_written_once() {
    let lines = capture(LogEncoding::Json, || {
        tracing::info!(TS = 1, _TS = 2, code = 3, "collide");
    });
    assert_eq!(lines[0].matches(r#""_TS""#).count(), 1, "{}", lines[0]);
    assert!(lines[0].contains(r#""_TS":2,"code":3"#), "{}", lines[0]);
}

/// What `flux logs` does with a controller's log lines: fluxcd/flux2
/// `cmd/flux/logs.go` (v2.9), ported to test that fluxhook's lines pass
/// through it as Flux's own do.
mod flux_logs {
    use super::*;

    /// `ControllerLogEntry`.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub(super) struct Entry {
        pub(super) timestamp: String,
        pub(super) level: String,
        pub(super) message: String,
        pub(super) error: String,
        pub(super) logger: String,
        pub(super) kind: String,
        pub(super) controller_kind: String,
        pub(super) name: String,
        pub(super) namespace: String,
    }

    /// The keys of the JSON object in the order written.
    struct Ordered(Vec<(String, Value)>);

    impl<'de> Deserialize<'de> for Ordered {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct OrderedVisitor;
            impl<'de> Visitor<'de> for OrderedVisitor {
                type Value = Ordered;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(pair) = map.next_entry::<String, Value>()? {
                        pairs.push(pair);
                    }
                    Ok(Ordered(pairs))
                }
            }
            deserializer.deserialize_map(OrderedVisitor)
        }
    }

    /// The keys of a line, in the order written.
    pub(super) fn keys(line: &str) -> Vec<String> {
        let Ordered(pairs) = serde_json::from_str(line).unwrap();
        pairs.into_iter().map(|(key, _)| key).collect()
    }

    /// `json.Unmarshal([]byte(line), &l)`: each key fills the field whose
    /// tag it matches, exactly or else without regard to case, a later key
    /// overwriting an earlier one; a value that is not a string (nor null)
    /// for a string field fails the line, and `flux logs` stops there.
    pub(super) fn decode(line: &str) -> Result<Entry, String> {
        let Ordered(pairs) = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let mut entry = Entry::default();
        for (key, value) in pairs {
            let tags = crate::logging::FLUX_LOGS_KEYS;
            let Some(tag) = tags
                .iter()
                .find(|tag| **tag == key)
                .or_else(|| tags.iter().find(|tag| tag.eq_ignore_ascii_case(&key)))
            else {
                continue;
            };
            let text = match value {
                Value::String(text) => text,
                Value::Null => continue,
                other => {
                    return Err(format!(
                        "json: cannot unmarshal {other} into Go struct field ControllerLogEntry.{tag} of type string"
                    ));
                }
            };
            let field = match *tag {
                "ts" => &mut entry.timestamp,
                "level" => &mut entry.level,
                "msg" => &mut entry.message,
                "error" => &mut entry.error,
                "logger" => &mut entry.logger,
                "reconciler kind" => &mut entry.kind,
                "controllerKind" => &mut entry.controller_kind,
                "name" => &mut entry.name,
                _ => &mut entry.namespace,
            };
            *field = text;
        }
        Ok(entry)
    }

    /// The flags `flux logs` filters with.
    #[derive(Default)]
    pub(super) struct Flags<'a> {
        pub(super) level: &'a str,
        pub(super) kind: &'a str,
        pub(super) name: &'a str,
        /// `--namespace`, `flux-system` unless given.
        pub(super) namespace: &'a str,
        pub(super) all_namespaces: bool,
    }

    /// `filterPrintLog`: the line printed, if the flags keep it
    /// (`strings.EqualFold` is a case-insensitive comparison).
    pub(super) fn filter_print(flags: &Flags<'_>, entry: &Entry) -> Option<String> {
        let keep = (flags.level.is_empty() || flags.level == entry.level)
            && (flags.kind.is_empty()
                || flags.kind.eq_ignore_ascii_case(&entry.kind)
                || flags.kind.eq_ignore_ascii_case(&entry.controller_kind))
            && (flags.name.is_empty() || flags.name.eq_ignore_ascii_case(&entry.name))
            && (flags.all_namespaces || flags.namespace.eq_ignore_ascii_case(&entry.namespace));
        // logTmpl: "{{.Timestamp}} {{.Level}} {{or .Kind .ControllerKind}}{{if .Name}}/{{.Name}}.{{.Namespace}}{{end}} - {{.Message}} {{.Error}}\n"
        keep.then(|| {
            let kind = if entry.kind.is_empty() {
                &entry.controller_kind
            } else {
                &entry.kind
            };
            let object = if entry.name.is_empty() {
                String::new()
            } else {
                format!("/{}.{}", entry.name, entry.namespace)
            };
            format!(
                "{} {} {kind}{object} - {} {}",
                entry.timestamp, entry.level, entry.message, entry.error
            )
        })
    }

    /// `logRequest`: lines not starting with `{` are skipped; decoding
    /// stops at the first line that fails.
    pub(super) fn print(flags: &Flags<'_>, lines: &[String]) -> Result<Vec<String>, String> {
        let mut printed = Vec::new();
        for line in lines {
            if !line.starts_with('{') {
                continue;
            }
            let entry = decode(line)?;
            printed.extend(filter_print(flags, &entry));
        }
        Ok(printed)
    }
}

/// Lines of a reconciliation, a webhook request and the start, as the
/// controller, the server and the binary write them.
fn a_day_of_logs() -> Vec<String> {
    capture(LogEncoding::Json, || {
        tracing::info!(target: "fluxhook_receiver::run", addr = "[::]:9292", "starting the webhook receiver server");
        {
            let other = ReceiverKey {
                namespace: "apps".into(),
                name: "github".into(),
            };
            let _entered = reconcile_span(&other).entered();
            tracing::info!(target: "fluxhook_receiver::controller::reconcile", "Reconciliation finished, next run in 10m0s");
        }
        {
            let _entered = reconcile_span(&key()).entered();
            tracing::warn!(target: "fluxhook_receiver::controller_metrics", error = %"Secret 'flux-system/token' not found", "Reconciler error");
        }
        let _entered = webhook_span("flux-system", "github").entered();
        tracing::info!(target: "fluxhook_receiver::server::auth", "handling GitHub event: push");
    })
}

#[test]
fn flux_logs_reads_every_line() {
    let lines = a_day_of_logs();
    let printed = flux_logs::print(
        &flux_logs::Flags {
            all_namespaces: true,
            ..flux_logs::Flags::default()
        },
        &lines,
    )
    .unwrap();
    assert_eq!(printed.len(), lines.len(), "{printed:#?}");
    for line in &printed {
        // A timestamp and a level, never blank.
        let mut words = line.split(' ');
        assert_eq!(words.next().map(str::len), Some(24), "{line}");
        assert!(matches!(words.next(), Some("info" | "error")), "{line}");
    }
    assert!(
        printed[0].ends_with(" info  - starting the webhook receiver server "),
        "{}",
        printed[0]
    );
    assert!(
        printed[1]
            .ends_with(" info Receiver/github.apps - Reconciliation finished, next run in 10m0s "),
        "{}",
        printed[1]
    );
    assert!(
        printed[2].ends_with(" error Receiver/github.flux-system - Reconciler error Secret 'flux-system/token' not found"),
        "{}",
        printed[2]
    );
    assert!(
        printed[3].ends_with(" info Receiver/github.flux-system - handling GitHub event: push "),
        "{}",
        printed[3]
    );
}

#[test]
fn flux_logs_filters_match_our_lines() {
    let lines = a_day_of_logs();
    let print = |flags: flux_logs::Flags<'_>| flux_logs::print(&flags, &lines).unwrap().len();
    // `flux logs` (the namespace defaults to flux-system): the reconcile
    // error and the webhook line; the start has no namespace, as Flux's.
    assert_eq!(
        print(flux_logs::Flags {
            namespace: "flux-system",
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        print(flux_logs::Flags {
            level: "error",
            all_namespaces: true,
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        print(flux_logs::Flags {
            kind: "receiver",
            name: "GitHub",
            all_namespaces: true,
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        print(flux_logs::Flags {
            kind: "Receiver",
            namespace: "apps",
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        print(flux_logs::Flags {
            kind: "GitRepository",
            all_namespaces: true,
            ..Default::default()
        }),
        0
    );
}

#[test]
fn the_flux_logs_port_fails_as_go_does() {
    assert!(flux_logs::decode(r#"{"level":"info","ts":1700000000.5,"msg":"epoch time"}"#).is_err());
    assert!(flux_logs::decode(r#"{"level":"info","Name":3}"#).is_err());
    let entry = flux_logs::decode(r#"{"level":"info","LEVEL":"error","msg":"m"}"#).unwrap();
    assert_eq!(
        entry.level, "error",
        "a later key matching without case wins"
    );
}
