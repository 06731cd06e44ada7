//! Conformance with the real deliveries of `../shared/corpus`: every entry of
//! `index.json` parses with the headers its host sends and yields exactly the
//! listed ref, commit, repository and URLs; and every delivery, signed the way
//! its host signs it, passes the policy of the Flux receiver type that takes
//! it, and fails under another secret or, when signed, once a byte changes.

#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;
use fluxhook_corpus::{Corpus, Entry};
use fluxhook_payload::{Event, Sender, parse};
use fluxhook_signature::VerifyError;

fn corpus() -> Corpus {
    Corpus::locate().unwrap_or_else(|e| panic!("{e}"))
}

/// Checks one entry, returning what is wrong with it.
fn check_parse(corpus: &Corpus, entry: &Entry) -> Result<(), String> {
    let sender: Sender = entry.provider.parse().map_err(|e| format!("{e}"))?;
    let body = Bytes::from(corpus.read_body(entry).map_err(|e| e.to_string())?);
    let webhook = parse(sender, &entry.headers, body).map_err(|e| format!("parse: {e}"))?;

    let event_type = match &entry.body_event_type {
        Some(from_body) => from_body.as_str(),
        None => entry
            .headers
            .values()
            .next()
            .and_then(|v| v.to_str().ok())
            .ok_or("the index lists no event header")?,
    };
    if webhook.event_type() != Some(event_type) {
        return Err(format!(
            "event type {:?}, expected {event_type:?}",
            webhook.event_type()
        ));
    }

    let Some(expected) = &entry.expected else {
        return Ok(());
    };
    let Event::Push(push) = webhook.event() else {
        return Err(format!("expected a push, got {:?}", webhook.event()));
    };
    let got = (
        push.git_ref.as_str(),
        push.after.as_str(),
        push.repository.full_name(),
        push.repository.urls(),
    );
    let want = (
        expected.git_ref.as_str(),
        expected.commit.as_str(),
        expected.repository.clone(),
        expected
            .repository_urls
            .iter()
            .map(String::as_str)
            .collect(),
    );
    if got != want {
        return Err(format!("got {got:?}\n  expected {want:?}"));
    }
    Ok(())
}

#[test]
fn every_delivery_parses_to_the_listed_facts() {
    let corpus = corpus();
    let failures: Vec<String> = corpus
        .entries()
        .iter()
        .filter_map(|entry| {
            check_parse(&corpus, entry)
                .err()
                .map(|e| format!("{}: {e}", entry.file))
        })
        .collect();
    let pushes = corpus
        .entries()
        .iter()
        .filter(|e| e.expected.is_some())
        .count();
    println!(
        "{} deliveries ({pushes} pushes with listed facts): {} passed, {} failed",
        corpus.entries().len(),
        corpus.entries().len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(pushes > 0, "the index lists no push facts");
}

#[test]
fn every_signed_delivery_verifies_and_a_changed_one_does_not() {
    let corpus = corpus();
    let secret = b"conformance-token";
    let mut checked = 0;
    for entry in corpus.entries() {
        let body = corpus.read_body(entry).unwrap();
        for policy in entry.signature_policies() {
            let mut headers = entry.headers.clone();
            let (name, value) = policy.signing_scheme().sign(&body, secret).unwrap();
            headers.insert(name, value);
            let verified = policy
                .verify(&headers, &body, secret)
                .unwrap_or_else(|e| panic!("{} under {}: {e}", entry.file, policy.name()));

            let other_secret = policy.verify(&headers, &body, b"another-token");
            assert!(
                matches!(other_secret, Err(VerifyError::Mismatch { .. })),
                "{} under {}: another secret gave {other_secret:?}",
                entry.file,
                policy.name()
            );
            // A signature binds the body; a shared token (algorithm None) does not.
            if verified.algorithm.is_some() {
                let mut changed = body.clone();
                changed.push(b'\n');
                let rejected = policy.verify(&headers, &changed, secret);
                assert!(
                    matches!(rejected, Err(VerifyError::Mismatch { .. })),
                    "{} under {}: a changed body gave {rejected:?}",
                    entry.file,
                    policy.name()
                );
            }
            checked += 1;
        }
    }
    println!("{checked} signed deliveries verified");
    assert!(checked > 0);
}
