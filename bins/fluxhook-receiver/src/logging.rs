//! Log lines as Flux's controllers write them, as `--log-level` and
//! `--log-encoding` ask.
//!
//! Flux's controllers log through fluxcd/pkg `runtime/logger` (v0.110), a zap
//! logger built by controller-runtime's `pkg/log/zap` with zap's production
//! encoder configuration: `--log-encoding=json` writes one JSON object per
//! line with the keys `level` (lowercase, `LowercaseLevelEncoder`), `ts`
//! (`zapcore.ISO8601TimeEncoder`: `2006-01-02T15:04:05.000Z0700`), `logger`
//! (the logger's name, absent when it has none), `msg`, then the line's
//! fields, and an error under `error`. `--log-encoding=console` writes zap's
//! console form: tab-separated time, capitalised level, logger and message,
//! then the fields as JSON.
//!
//! tracing events and spans map onto that shape:
//!
//! - levels: `trace`, `debug`, `info` and `error` as Flux names them. Flux
//!   has no warning level (logr has `Info` and `Error` only, and Flux writes
//!   what needs attention through `Error`, e.g. notification-controller's
//!   deprecation warnings), so tracing's WARN is written as `error`, and
//!   `--log-level=error` keeps it.
//! - `ts`: the time in UTC, to the millisecond, with zap's ISO 8601 layout.
//! - `msg`: the event's message; `error`: its `error` field, with causes.
//! - fields of fluxhook's own spans (the reconcile span's `controller`,
//!   `controllerGroup`, `controllerKind`, `namespace`, `name`, `reconcileID`;
//!   the webhook span's Receiver, at debug level) come first, the event's own
//!   after them; a field set twice is written once, the innermost value
//!   winning. Spans of libraries (kube, hyper) add nothing. The webhook
//!   server's lines name their Receiver with fields of their own.
//! - A reconcile line also carries the Receiver as controller-runtime writes
//!   it, `"Receiver":{"name":…,"namespace":…}`, and a webhook line carries
//!   `"reconciler kind":"Receiver"`, as notification-controller's receiver
//!   server writes it, so that `flux logs --kind=Receiver` finds both.
//! - `logger`: none on reconcile lines (controller-runtime's are unnamed),
//!   `receiver-server` on the webhook server's, `setup` on the binary's own,
//!   `runtime` on libraries' (Flux names klog's logger so); an event's
//!   `logger` field overrides it.
//! - `flux logs` decodes the keys `ts`, `level`, `msg`, `error`, `logger`,
//!   `reconciler kind`, `controllerKind`, `name` and `namespace` as strings,
//!   matching keys without regard to case, and stops reading a pod's logs at
//!   the first line it cannot decode. Those keys are always written as
//!   strings, and a field whose key differs from one of them only in case is
//!   written with a leading `_`.

mod sink;

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{LogEncoding, LogLevel};

/// Writes log lines to stderr, from a thread of their own (see [`sink`]),
/// until the [`Flushed`] returned is dropped. The level applies to
/// fluxhook's own lines and kube's; the HTTP and TLS libraries below stay at
/// `info`, as their debug lines describe every read and write.
#[must_use = "lines still queued are lost unless the guard is dropped at the end of main"]
pub(crate) fn init(level: LogLevel, encoding: LogEncoding) -> Flushed {
    let sink = sink::LineSink::stderr();
    tracing_subscriber::registry()
        .with(filter(level))
        .with(FluxLayer::new(encoding, sink.clone()))
        .init();
    // A panic's message comes after the lines logged before it.
    let panic_sink = sink.clone();
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        panic_sink.flush();
        report(info);
    }));
    Flushed(sink)
}

/// Writes the log lines still queued when dropped (at the end of `main`);
/// lines logged afterwards are written at once.
#[derive(Debug)]
pub(crate) struct Flushed(sink::LineSink);

impl Drop for Flushed {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The filter of `--log-level`. WARN events are written as `error`, so
/// `error` keeps them.
fn filter(level: LogLevel) -> EnvFilter {
    let level = match level {
        LogLevel::Error => "warn",
        other => other.as_str(),
    };
    EnvFilter::new(format!(
        "{level},hyper=info,hyper_util=info,h2=info,rustls=info,tower=info"
    ))
}

/// The keys `flux logs` decodes as strings, spelled as the JSON tags of
/// fluxcd/flux2 `cmd/flux/logs.go` `ControllerLogEntry`: Go's
/// `encoding/json` matches a key to a tag exactly, or else without regard
/// to case.
const FLUX_LOGS_KEYS: [&str; 9] = [
    "ts",
    "level",
    "msg",
    "error",
    "logger",
    "reconciler kind",
    "controllerKind",
    "name",
    "namespace",
];

/// Keys the formatter writes itself, which no field may take.
const OWN_KEYS: [&str; 4] = ["ts", "level", "msg", "logger"];

/// A field's key as written, with a leading `_` when it would take a key the
/// formatter writes itself, or spell one `flux logs` reads in another case
/// (Go would decode it into the same place); and whether its value must be a
/// string (a key `flux logs` reads). One pass over the keys: this runs for
/// every field of every line.
fn decodable_key(key: Key) -> (Key, bool) {
    match FLUX_LOGS_KEYS
        .iter()
        .find(|flux| flux.eq_ignore_ascii_case(&key))
    {
        None => (key, false),
        Some(flux) if **flux == *key && !OWN_KEYS.contains(flux) => (key, true),
        Some(_) => (Cow::Owned(format!("_{key}")), false),
    }
}

/// The logger of the binary's own lines, as notification-controller's
/// `main.go` names its `setupLog`.
const SETUP_LOGGER: &str = "setup";
/// The logger of the webhook server's lines, as notification-controller's
/// receiver server names its logger (`internal/server/receiver_server.go`).
const RECEIVER_SERVER_LOGGER: &str = "receiver-server";
/// The logger of libraries' lines, as fluxcd/pkg `runtime/logger` names
/// klog's (`SetLogger`: `logger.WithName("runtime")`).
const RUNTIME_LOGGER: &str = "runtime";

/// The modules of this binary: their lines are `setup`'s.
const SETUP_TARGETS: [&str; 5] = [
    "fluxhook_receiver::run",
    "fluxhook_receiver::listen",
    "fluxhook_receiver::health",
    "fluxhook_receiver::logging",
    "fluxhook_receiver::cli",
];
/// The webhook server's module in the library.
const SERVER_TARGET: &str = "fluxhook_receiver::server";

/// The tracing layer that writes Flux's log lines.
pub(crate) struct FluxLayer<W> {
    encoding: LogEncoding,
    make_writer: W,
}

impl<W> FluxLayer<W> {
    pub(crate) fn new(encoding: LogEncoding, make_writer: W) -> Self {
        Self {
            encoding,
            make_writer,
        }
    }
}

/// The fields of one of fluxhook's spans, kept in its extensions.
#[derive(Debug, Default)]
struct SpanFields {
    fields: Fields,
    /// The span is the controller's reconcile span.
    reconcile: bool,
    /// The span is the webhook server's.
    server: bool,
}

/// A field's key: the name tracing gives (static), or one made for the line.
type Key = Cow<'static, str>;

/// A field: its key, and where its value's JSON is in [`Fields::json`].
#[derive(Debug, Clone)]
struct Entry {
    key: Key,
    value: Range<usize>,
    /// Written as a JSON string: a value `flux logs` must read as one.
    as_string: bool,
}

/// Fields in the order they were written; a key set again keeps its place
/// and takes the new value. Values are kept as the JSON they are written
/// as, one after another in one buffer: a webhook line is written on every
/// request, and a `serde_json::Value` per field (allocated, escaped, then
/// dropped) was a third of its cost (docs/performance.md).
#[derive(Debug, Default, Clone)]
struct Fields {
    entries: Vec<Entry>,
    json: Vec<u8>,
}

impl Fields {
    /// Empties the fields, keeping their buffers.
    fn clear(&mut self) {
        self.entries.clear();
        self.json.clear();
    }

    /// Sets `key` to the JSON `write` appends.
    fn set_with(&mut self, key: Key, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.json.len();
        write(&mut self.json);
        let value = start..self.json.len();
        match self.entries.iter_mut().find(|entry| entry.key == key) {
            Some(entry) => {
                entry.value = value;
                entry.as_string = false;
            }
            None => self.entries.push(Entry {
                key,
                value,
                as_string: false,
            }),
        }
    }

    /// Sets `key` to `value`, JSON-encoded.
    fn set<T: serde::Serialize + ?Sized>(&mut self, key: Key, value: &T) {
        // Writing to a Vec cannot fail, and these values always serialize.
        self.set_with(key, |json| {
            let _ = serde_json::to_writer(json, value);
        });
    }

    /// The JSON of `key`'s value.
    fn get(&self, key: &str) -> Option<&[u8]> {
        let entry = self.entries.iter().find(|entry| entry.key == key)?;
        self.json.get(entry.value.clone())
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let at = self.entries.iter().position(|entry| entry.key == key)?;
        Some(self.entries.remove(at))
    }

    /// The JSON of `entry`'s value, as a JSON string if it must be one.
    fn push_value(&self, text: &mut Vec<u8>, entry: &Entry) {
        let value = self.json.get(entry.value.clone()).unwrap_or_default();
        push_as(text, value, entry.as_string);
    }

    /// The text of `entry`'s value: a string's contents, other values as
    /// JSON (as `Value::to_string` wrote them).
    fn text(&self, entry: &Entry) -> String {
        let value = self.json.get(entry.value.clone()).unwrap_or_default();
        text_of(value)
    }
}

/// `value` (JSON) written to `text`; when `as_string`, a value that is not
/// a string is written as the string of its JSON (a number, a boolean or
/// `null`: none holds a character JSON escapes).
fn push_as(text: &mut Vec<u8>, value: &[u8], as_string: bool) {
    if as_string && value.first() != Some(&b'"') {
        text.push(b'"');
        text.extend_from_slice(value);
        text.push(b'"');
    } else {
        text.extend_from_slice(value);
    }
}

/// The text of a JSON value: a string's contents, other values as they are.
fn text_of(value: &[u8]) -> String {
    if value.first() == Some(&b'"') {
        serde_json::from_slice(value).unwrap_or_default()
    } else {
        String::from_utf8_lossy(value).into_owned()
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Escaped as it is formatted, without a string in between.
        self.set(Cow::Borrowed(field.name()), &format_args!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(Cow::Borrowed(field.name()), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(Cow::Borrowed(field.name()), &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(Cow::Borrowed(field.name()), &value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // Not finite: `null`, as `serde_json::Value::from` made it.
        self.set(Cow::Borrowed(field.name()), &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(Cow::Borrowed(field.name()), &value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(Cow::Borrowed(field.name()), error_chain(value).as_str());
    }
}

/// An error and its causes, `: `-separated as Go's wrapped errors print,
/// without repeating a cause the message already shows.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn is_fluxhook(target: &str) -> bool {
    target.starts_with("fluxhook")
}

fn is_under(target: &str, module: &str) -> bool {
    target == module
        || target
            .strip_prefix(module)
            .is_some_and(|rest| rest.starts_with("::"))
}

impl<S, W> Layer<S> for FluxLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let target = attrs.metadata().target();
        if !is_fluxhook(target) {
            return;
        }
        let mut fields = SpanFields {
            reconcile: attrs.metadata().name() == "reconcile"
                && attrs.metadata().fields().field("reconcileID").is_some(),
            server: is_under(target, SERVER_TARGET),
            ..SpanFields::default()
        };
        attrs.record(&mut fields.fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut fields.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let mut scratch = Scratch::take();
        let mut line = Line {
            level: flux_level(*metadata.level()),
            target: metadata.target(),
            fields: std::mem::take(&mut scratch.fields),
            spare: std::mem::take(&mut scratch.entries),
            reconcile: false,
            // The webhook server's lines carry the Receiver's fields themselves.
            server: is_under(metadata.target(), SERVER_TARGET),
        };
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                    line.reconcile |= span_fields.reconcile;
                    line.server |= span_fields.server;
                    let from = &span_fields.fields;
                    for entry in &from.entries {
                        let value = from.json.get(entry.value.clone()).unwrap_or_default();
                        line.fields
                            .set_with(entry.key.clone(), |json| json.extend_from_slice(value));
                    }
                }
            }
        }
        event.record(&mut line.fields);
        if normalized.is_some() {
            // tracing-log's fields describe where a `log` record came from.
            line.fields
                .entries
                .retain(|entry| !entry.key.starts_with("log."));
        }
        let mut text = std::mem::take(&mut scratch.text);
        match self.encoding {
            LogEncoding::Json => line.json(SystemTime::now(), &mut text),
            LogEncoding::Console => line.console(SystemTime::now(), &mut text),
        }
        let mut writer = self.make_writer.make_writer_for(metadata);
        // A log line that cannot be written has nowhere to be reported.
        let _ = writer.write_all(&text);
        scratch.fields = line.fields;
        scratch.entries = line.spare;
        scratch.text = text;
        scratch.put_back();
    }
}

/// The buffers a line is built in, kept by each thread from one line to the
/// next: allocating them took four allocations and frees per line, two lines
/// per webhook request (docs/performance.md).
#[derive(Default)]
struct Scratch {
    fields: Fields,
    /// The fields' second list, which [`Line::body`] orders them into.
    entries: Vec<Entry>,
    text: Vec<u8>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::default();
}

impl Scratch {
    /// The thread's buffers, empty; new ones when a line is logged while
    /// another is being built on this thread (a field's `Debug` that logs).
    fn take() -> Self {
        let mut scratch = SCRATCH.try_with(std::cell::Cell::take).unwrap_or_default();
        scratch.fields.clear();
        scratch.entries.clear();
        scratch.text.clear();
        scratch
    }

    /// Keeps the buffers for the thread's next line, unless a long line made
    /// one large.
    fn put_back(mut self) {
        const KEPT_BYTES: usize = 16 * 1024;
        if self.text.capacity() > KEPT_BYTES || self.fields.json.capacity() > KEPT_BYTES {
            self.text = Vec::new();
            self.fields.json = Vec::new();
        }
        self.entries.clear();
        self.fields.entries.clear();
        let _ = SCRATCH.try_with(|cell| cell.set(self));
    }
}

/// Flux's name of a tracing level.
fn flux_level(level: Level) -> &'static str {
    match level {
        Level::ERROR | Level::WARN => "error",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// One event, with the fields of its spans, before it is written.
struct Line<'a> {
    level: &'static str,
    target: &'a str,
    fields: Fields,
    /// An empty list, which [`Line::body`] orders the fields into.
    spare: Vec<Entry>,
    reconcile: bool,
    server: bool,
}

impl Line<'_> {
    /// The logger's name (see the module's documentation).
    fn logger(&mut self) -> Option<Cow<'static, str>> {
        if let Some(logger) = self.fields.remove("logger") {
            return Some(Cow::Owned(self.fields.text(&logger)));
        }
        if self.reconcile {
            None
        } else if self.server || is_under(self.target, SERVER_TARGET) {
            Some(Cow::Borrowed(RECEIVER_SERVER_LOGGER))
        } else if self.target == "fluxhook_receiver"
            || SETUP_TARGETS.iter().any(|t| is_under(self.target, t))
        {
            Some(Cow::Borrowed(SETUP_LOGGER))
        } else if is_fluxhook(self.target) {
            None
        } else {
            Some(Cow::Borrowed(RUNTIME_LOGGER))
        }
    }

    /// Takes the message out of the fields, and puts the fields after it in
    /// order: the keys `flux logs` reads kept decodable (and strings), Flux's
    /// extra keys added, the error last.
    fn body(&mut self) -> Option<Entry> {
        let fields = &mut self.fields;
        let message = fields.remove("message").map(|message| Entry {
            as_string: true,
            ..message
        });
        let error = fields.remove("error");
        let mut body = std::mem::take(&mut self.spare);
        body.clear();
        // Room for the fields and the two this may add.
        body.reserve(fields.entries.len() + 2);
        // The keys are distinct (`Fields::set_with`): two can meet only once
        // one is renamed, and only then is the list searched.
        let mut renamed = false;
        for entry in fields.entries.drain(..) {
            let before = entry.key.len();
            let (key, flux_reads) = decodable_key(entry.key);
            renamed |= key.len() != before;
            let entry = Entry {
                key,
                as_string: entry.as_string || flux_reads,
                ..entry
            };
            // A key set again (once decodable) keeps its place.
            let earlier = if renamed {
                body.iter_mut().find(|old| old.key == entry.key)
            } else {
                None
            };
            match earlier {
                Some(old) => *old = entry,
                None => body.push(entry),
            }
        }
        self.spare = std::mem::replace(&mut fields.entries, body);
        let find = |fields: &Fields, key: &str| {
            fields
                .entries
                .iter()
                .find(|entry| entry.key == key)
                .cloned()
        };
        if self.reconcile
            && let (Some(kind), Some(name), Some(namespace)) = (
                find(fields, "controllerKind"),
                find(fields, "name"),
                find(fields, "namespace"),
            )
        {
            // controller-runtime's `klog.KRef(namespace, name)` under the
            // kind, before `namespace` and `name`.
            let kind = fields.text(&kind);
            if fields.get(&kind).is_none() {
                let at = fields
                    .entries
                    .iter()
                    .position(|entry| entry.key == "namespace" || entry.key == "name")
                    .unwrap_or(fields.entries.len());
                let start = fields.json.len();
                let mut object = b"{\"name\":".to_vec();
                fields.push_value(&mut object, &name);
                object.extend_from_slice(b",\"namespace\":");
                fields.push_value(&mut object, &namespace);
                object.push(b'}');
                fields.json.extend_from_slice(&object);
                let value = start..fields.json.len();
                fields.entries.insert(
                    at,
                    Entry {
                        key: Cow::Owned(kind),
                        value,
                        as_string: false,
                    },
                );
            }
        }
        if self.server && !self.reconcile && fields.get("name").is_some() {
            let start = fields.json.len();
            fields.json.extend_from_slice(b"\"Receiver\"");
            let value = start..fields.json.len();
            fields.entries.insert(
                0,
                Entry {
                    key: Cow::Borrowed("reconciler kind"),
                    value,
                    as_string: false,
                },
            );
        }
        if let Some(error) = error {
            fields.entries.push(Entry {
                key: Cow::Borrowed("error"),
                as_string: true,
                ..error
            });
        }
        message
    }

    /// The line as JSON, written straight into one buffer (a line is
    /// written on every webhook request: no string per key or value).
    fn json(&mut self, now: SystemTime, text: &mut Vec<u8>) {
        let logger = self.logger();
        let message = self.body();
        // A webhook line is 300 to 400 bytes.
        text.reserve(512);
        text.extend_from_slice(b"{\"level\":");
        push_json_str(text, self.level);
        text.extend_from_slice(b",\"ts\":\"");
        push_iso8601(text, now);
        text.push(b'"');
        if let Some(logger) = logger {
            text.extend_from_slice(b",\"logger\":");
            push_json_str(text, &logger);
        }
        text.extend_from_slice(b",\"msg\":");
        match &message {
            Some(message) => self.fields.push_value(text, message),
            None => text.extend_from_slice(b"\"\""),
        }
        for entry in &self.fields.entries {
            text.push(b',');
            push_json_str(text, &entry.key);
            text.push(b':');
            self.fields.push_value(text, entry);
        }
        text.extend_from_slice(b"}\n");
    }

    fn console(&mut self, now: SystemTime, text: &mut Vec<u8>) {
        let logger = self.logger();
        let message = self.body();
        text.reserve(512);
        push_iso8601(text, now);
        text.push(b'\t');
        text.extend(self.level.bytes().map(|b| b.to_ascii_uppercase()));
        if let Some(logger) = logger {
            text.push(b'\t');
            text.extend_from_slice(logger.as_bytes());
        }
        text.push(b'\t');
        if let Some(message) = &message {
            text.extend_from_slice(self.fields.text(message).as_bytes());
        }
        if !self.fields.entries.is_empty() {
            // zap's console encoder writes the fields as JSON with a space
            // after each colon and comma.
            text.extend_from_slice(b"\t{");
            for (at, entry) in self.fields.entries.iter().enumerate() {
                if at > 0 {
                    text.extend_from_slice(b", ");
                }
                push_json_str(text, &entry.key);
                text.extend_from_slice(b": ");
                self.fields.push_value(text, entry);
            }
            text.push(b'}');
        }
        text.push(b'\n');
    }
}

/// `value` as a JSON string.
fn push_json_str(text: &mut Vec<u8>, value: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(text, value);
}

/// `now` in UTC as zap's `ISO8601TimeEncoder` lays it out
/// (`2006-01-02T15:04:05.000Z0700`, which for UTC ends in `Z`).
#[cfg(test)]
fn iso8601(now: SystemTime) -> String {
    let mut text = Vec::new();
    push_iso8601(&mut text, now);
    String::from_utf8(text).unwrap_or_default()
}

/// `now` as [`iso8601`] lays it out, written to `text`. The date and time
/// to the second are kept by each thread from one line to the next: most
/// lines fall in the same second as the thread's last one (working them out
/// again was a fourteenth of a webhook line's instructions).
fn push_iso8601(text: &mut Vec<u8>, now: SystemTime) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let cached = LAST_SECOND.try_with(|last| {
        let (second, date_time) = last.get();
        let date_time = if second == seconds && date_time[0] != 0 {
            date_time
        } else {
            let mut fresh = Vec::with_capacity(19);
            push_date_time(&mut fresh, seconds);
            let date_time = fresh.try_into().unwrap_or([0; 19]);
            last.set((seconds, date_time));
            date_time
        };
        text.extend_from_slice(&date_time);
    });
    if cached.is_err() {
        push_date_time(text, seconds);
    }
    text.push(b'.');
    push_digits(text, u64::from(since_epoch.subsec_millis()), 3);
    text.push(b'Z');
}

thread_local! {
    /// The second of the thread's last line, and its date and time as
    /// [`push_date_time`] writes them (all zeros before the first line).
    static LAST_SECOND: std::cell::Cell<(u64, [u8; 19])> = const {
        std::cell::Cell::new((0, [0; 19]))
    };
}

/// `2006-01-02T15:04:05`: the date and time of `seconds` since the epoch, in
/// UTC.
fn push_date_time(text: &mut Vec<u8>, seconds: u64) {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    // Digits written by hand: `write!` took a tenth of a webhook line's
    // instructions (docs/performance.md).
    let year = u64::try_from(year).unwrap_or(0).min(9999);
    push_digits(text, year, 4);
    text.push(b'-');
    push_digits(text, u64::from(month), 2);
    text.push(b'-');
    push_digits(text, u64::from(day), 2);
    text.push(b'T');
    push_digits(text, of_day / 3600, 2);
    text.push(b':');
    push_digits(text, of_day % 3600 / 60, 2);
    text.push(b':');
    push_digits(text, of_day % 60, 2);
}

/// The last `width` decimal digits of `value`, zero-padded.
fn push_digits(text: &mut Vec<u8>, value: u64, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10u64.pow(place) % 10;
        // A digit is below 10: it fits a byte.
        #[allow(clippy::cast_possible_truncation)]
        text.push(b'0' + digit as u8);
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests;
