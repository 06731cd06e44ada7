//! Deliveries of every sender.
//!
//! Input: a sender selector byte (an index into `Sender::ALL`), then
//! `headers NUL body`.

use bytes::Bytes;
use fluxhook_payload::{Event, ParseError, Parser, RefKind, Sender, check_hub_delivery};

use crate::input::{fields, headers, selector};

pub(crate) fn run(data: &[u8]) {
    let (select, rest) = selector(data);
    let sender = Sender::ALL[usize::from(select) % Sender::ALL.len()];
    let parts = fields(rest, 2);
    let headers = headers(parts[0]);
    let body = Bytes::copy_from_slice(parts[1]);

    let _ = Sender::detect_git_host(&headers);
    let _ = check_hub_delivery(&headers, &body);

    match Parser::new().parse(sender, &headers, body.clone()) {
        Ok(webhook) => {
            assert_eq!(webhook.sender(), sender);
            assert_eq!(webhook.body(), &body, "the body is kept as received");
            if let Event::Push(push) = webhook.event() {
                assert_eq!(push.ref_kind(), RefKind::of(&push.git_ref));
                assert!(push.git_ref.ends_with(push.ref_name()));
            }
            if let Some(repository) = webhook.repository() {
                let _ = repository.full_name();
                assert!(repository.urls().len() <= 3);
            }
            let _ = webhook.json();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }

    // One byte under the body's size is refused for its size, before anything is read.
    if let Some(limit) = body.len().checked_sub(1) {
        let refused =
            Parser::new()
                .with_max_body_bytes(limit)
                .parse(sender, &headers, body.clone());
        assert!(
            matches!(refused, Err(ParseError::BodyTooLarge { size, limit: l }) if size == body.len() && l == limit),
            "a body over the limit is refused for its size: {refused:?}"
        );
    }
}
