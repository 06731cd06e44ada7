//! Receiver objects as the API serves them.
//!
//! Input: `receiver NUL secret NUL path`: the Receiver as JSON, its
//! Secret's data as `key=value` lines, and a request path.

use std::collections::BTreeMap;

use fluxhook_api::{Receiver, WebhookPath, parse_interval, resolve, webhook_path};
use fluxhook_receiver::{Credentials, Endpoint, ReceiverKey, TOKEN_KEY};

use crate::input::{fields, text};

pub(crate) fn run(data: &[u8]) {
    let parts = fields(data, 3);
    path(&text(parts[2]));
    let Ok(receiver) = serde_json::from_slice::<Receiver>(parts[0]) else {
        return;
    };

    // What is read prints back to itself.
    let printed = serde_json::to_value(&receiver).expect("a Receiver prints as JSON");
    let reread: Receiver = serde_json::from_value(printed).expect("a printed Receiver reads back");
    assert_eq!(
        reread, receiver,
        "a Receiver changes when printed and read back"
    );

    let spec = &receiver.spec;
    let _ = spec.interval();
    if let Some(interval) = &spec.interval {
        let _ = parse_interval(interval);
    }
    for resource in &spec.resources {
        let _ = resolve(resource.api_version.as_deref(), &resource.kind);
    }

    let secret: BTreeMap<String, Vec<u8>> = text(parts[1])
        .lines()
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            (key.to_owned(), value.as_bytes().to_vec())
        })
        .collect();
    match Endpoint::compile(&receiver, Some(&secret)) {
        Ok(endpoint) => {
            let path = endpoint.webhook_path();
            assert_eq!(WebhookPath::parse(path.as_str()).as_ref(), Ok(path));
            assert_eq!(endpoint.key, ReceiverKey::of(&receiver));
            // Receivers that prove themselves with a token are served at the
            // path Flux computes from it.
            if let Some(token) = secret
                .get(TOKEN_KEY)
                .and_then(|t| std::str::from_utf8(t).ok())
                && !matches!(endpoint.credentials, Credentials::Oidc(_))
            {
                let key = &endpoint.key;
                assert_eq!(path, &webhook_path(token, &key.name, &key.namespace));
            }
            for event in endpoint.events.iter() {
                assert!(
                    endpoint.accepts_event(event),
                    "a Receiver refuses its own event {event:?}"
                );
            }
        }
        Err(error) => {
            // The message does not depend on the token, so cannot show it.
            let mut other = secret.clone();
            if let Some(token) = other
                .get_mut(TOKEN_KEY)
                .filter(|t| !t.is_empty() && std::str::from_utf8(t).is_ok())
            {
                *token = token
                    .iter()
                    .map(|b| if *b == b'x' { b'y' } else { b'x' })
                    .collect();
            }
            if let Err(other_error) = Endpoint::compile(&receiver, Some(&other)) {
                assert_eq!(
                    error.to_string(),
                    other_error.to_string(),
                    "an error depends on the token"
                );
            }
        }
    }
    let _ = Endpoint::compile(&receiver, None);
}

/// A request path parses back to itself.
fn path(path: &str) {
    if let Ok(parsed) = WebhookPath::parse(path) {
        assert_eq!(parsed.as_str(), path);
        assert_eq!(
            WebhookPath::from_digest(parsed.digest()).as_ref(),
            Ok(&parsed)
        );
    }
}
