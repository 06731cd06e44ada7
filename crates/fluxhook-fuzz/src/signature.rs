//! Signature and token headers.
//!
//! Input: a policy selector byte (an index into `Policy::ALL`), then
//! `secret NUL body NUL headers`.

use fluxhook_signature::{Policy, VerifyError};
use http::HeaderMap;

use crate::input::{fields, headers, selector};

pub(crate) fn run(data: &[u8]) {
    let (select, rest) = selector(data);
    let policy = Policy::ALL[usize::from(select) % Policy::ALL.len()];
    let parts = fields(rest, 3);
    let (secret, body, headers) = (parts[0], parts[1], headers(parts[2]));

    // Whatever the headers say, an error never depends on the secret, so it
    // cannot show it: another secret of the same length gives the same text.
    if let Err(error) = policy.verify(&headers, body, secret) {
        let other: Vec<u8> = secret.iter().map(|b| b ^ 1).collect();
        if let Err(other_error) = policy.verify(&headers, body, &other) {
            assert_eq!(
                format!("{error} {error:?}"),
                format!("{other_error} {other_error:?}"),
                "an error depends on the secret"
            );
        }
    }

    // What the policy's scheme signs, the policy accepts; a changed body it refuses.
    let scheme = policy.signing_scheme();
    let Ok((name, value)) = scheme.sign(body, secret) else {
        return;
    };
    let mut signed = HeaderMap::new();
    signed.insert(name.clone(), value);
    let verified = policy.verify(&signed, body, secret);
    assert!(
        verified.as_ref().is_ok_and(|v| v.header == name),
        "{policy:?} refuses what {scheme:?} signed: {verified:?}"
    );
    if !matches!(policy, Policy::GitlabToken | Policy::AuthorizationToken) {
        let mut changed = body.to_vec();
        changed.push(b'\n');
        let forged = policy.verify(&signed, &changed, secret);
        assert!(
            matches!(forged, Err(VerifyError::Mismatch { .. })),
            "{policy:?} accepts a changed body: {forged:?}"
        );
    }
}
