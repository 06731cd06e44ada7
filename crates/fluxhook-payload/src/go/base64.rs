//! `base64.StdEncoding.DecodeString`, as Flux calls it on a Pub/Sub
//! message's `data` and then ignores the error
//! (`internal/server/receiver_handlers.go`, v1.9: `raw, _ :=
//! base64.StdEncoding.DecodeString(...)`).
//!
//! Go decodes four characters at a time, skipping `\r` and `\n`, and on an
//! error returns what the complete groups before it gave (Go 1.26,
//! `src/encoding/base64/base64.go`, `Decode` and `decodeQuantum`). Flux
//! goes on with those bytes, so fluxhook does too.

/// The value of a base64 character, or `None`.
fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn is_newline(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// What Go's `StdEncoding.DecodeString(text)` returns as bytes, the error
/// dropped: the bytes of every group decoded before the first fault.
pub(crate) fn decode_std_lenient(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut at = 0;
    while at < text.len() {
        let (next, bytes, stop) = quantum(text, at);
        out.extend_from_slice(&bytes);
        if stop {
            break;
        }
        at = next;
    }
    out
}

/// One group of four characters from `at`: where the next starts, the
/// bytes it gives, and whether decoding stops after it (an error or the
/// padding's end).
fn quantum(text: &[u8], mut at: usize) -> (usize, Vec<u8>, bool) {
    let mut values = [0u8; 4];
    let mut len = 0;
    while len < 4 {
        let Some(&byte) = text.get(at) else {
            // Input ended inside a group: with padding expected, an error
            // that yields nothing from this group.
            return (at, Vec::new(), true);
        };
        at += 1;
        if let Some(value) = sextet(byte) {
            values[len] = value;
            len += 1;
            continue;
        }
        if is_newline(byte) {
            continue;
        }
        if byte != b'=' || len < 2 {
            return (at, Vec::new(), true);
        }
        // Padding: `==` after two characters, `=` after three, then only
        // newlines to the end; trailing garbage is an error after the
        // group's bytes are written.
        if len == 2 {
            while text.get(at).copied().is_some_and(is_newline) {
                at += 1;
            }
            if text.get(at) != Some(&b'=') {
                return (at, Vec::new(), true);
            }
            at += 1;
        }
        let bytes = group_bytes(values, len);
        return (at, bytes, true);
    }
    (at, group_bytes(values, 4), false)
}

fn group_bytes(values: [u8; 4], len: usize) -> Vec<u8> {
    let word = values
        .iter()
        .fold(0u32, |word, &value| (word << 6) | u32::from(value));
    let bytes = word.to_be_bytes();
    bytes[1..len].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_go_does() {
        for (text, decoded) in [
            (&b"e30="[..], &b"{}"[..]),
            (b"eyJhIjoxfQ==", br#"{"a":1}"#),
            (b"eyJh\nIjox\r\nfQ==", br#"{"a":1}"#),
            // Go: a missing pad is an error, and the incomplete group gives nothing.
            (b"eyJhIjoxfQ", b"{\"a\":1"),
            (b"e30", b""),
            // Garbage: the groups before it.
            (b"e30=!!!!", b"{}"),
            (b"eyJhIjox!!", b"{\"a\":1"),
            (b"", b""),
            (b"=", b""),
            (b"e===", b""),
            // Non-zero padding bits are no error for StdEncoding (not Strict).
            (b"e31=", b"{}"),
        ] {
            assert_eq!(
                decode_std_lenient(text),
                decoded,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
