//! GitHub App authentication: the keys of a Flux GitHub App Secret, and
//! GitHub's reply to `POST /app/installations/{id}/access_tokens`
//! (fluxhook-register's `github_app`).
//!
//! Input: a selector byte. Bit 0 clear, a Secret's data: `app-id NUL
//! installation-id NUL installation-owner NUL private-key NUL base-url`, in
//! the order of `github_app::KEYS`; bits 1 to 5 say which keys the Secret
//! holds (a key can be there and empty). Bit 6 set puts the test app's PEM
//! private key in place of an empty private-key field, so that mutations of
//! the other fields still reach a usable key; bit 7 set signs an app JWT with
//! a parsed app (RSA signing is slow: only inputs that ask for it pay). Bit 0
//! set, the JSON body of an access-token reply.
//!
//! Invariants: a parsed Secret gives back the fields it was given (IDs as
//! numbers, owner and URL trimmed), its JWT names the app; a parsed reply
//! gives back its token and expiry time; no error and no `Debug` output
//! shows the private key or the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fluxhook_register::Token;
use fluxhook_register::github_app::{GitHubApp, KEYS, read_access_token};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use serde_json::{Value, json};
use url::Url;

use crate::input::{fields, join, selector};

/// The fake GitHub's test-only app key (PKCS#1, as GitHub downloads it); see
/// fluxhook-test-githost's `keys/README.md`. It protects nothing.
const TEST_KEY: &str = include_str!("../../fluxhook-test-githost/keys/test-only-github-app.pem");
/// Its public half: a PEM of the wrong kind.
const TEST_PUBLIC_KEY: &str =
    include_str!("../../fluxhook-test-githost/keys/test-only-github-app.pub.pem");

/// Key material no message may show: base64 lines of a key at least this
/// long (armour lines and words are not secret, and messages name them).
const SECRET_LINE: usize = 16;

pub(crate) fn run(data: &[u8]) {
    let (select, rest) = selector(data);
    if select & 1 == 0 {
        secret(select, rest);
    } else {
        reply(rest);
    }
}

fn secret(select: u8, data: &[u8]) {
    let parts = fields(data, KEYS.len());
    let mut values: Vec<Option<&[u8]>> = (0..KEYS.len())
        .map(|i| ((select >> (i + 1)) & 1 == 1).then_some(parts[i]))
        .collect();
    if select & 0x40 != 0 && values[3].is_some_and(<[u8]>::is_empty) {
        values[3] = Some(TEST_KEY.as_bytes());
    }
    let value = |key: &str| {
        let index = KEYS.iter().position(|k| *k == key)?;
        values[index]
    };
    let text = |index: usize| {
        values[index]
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let private_key = values[3].map(String::from_utf8_lossy).unwrap_or_default();
    // Lines of the key that no other field holds (the base URL is shown back
    // when it is not one, and may hold anything).
    let others: Vec<&[u8]> = [0, 1, 2, 4].iter().filter_map(|i| values[*i]).collect();
    let secret_lines: Vec<&str> = private_key
        .lines()
        .map(str::trim)
        .filter(|line| is_key_material(line))
        .filter(|line| !others.iter().any(|other| contains(other, line.as_bytes())))
        .collect();
    // The base URL is shown back as given or as parsed, whatever it holds,
    // and in `Debug` output escaped (a host may hold `"`).
    let echoed: Vec<String> = text(4)
        .into_iter()
        .flat_map(|base| {
            [
                Url::parse(base).map(String::from).ok(),
                Some(base.to_owned()),
            ]
        })
        .flatten()
        .flat_map(|echo| {
            let debug = format!("{echo:?}");
            let escaped = debug[1..debug.len() - 1].to_owned();
            [echo, escaped]
        })
        .collect();
    let shows_key = |shown: &str| {
        let shown = echoed.iter().fold(shown.to_owned(), |shown, echo| {
            shown.replace(echo.as_str(), "")
        });
        secret_lines
            .iter()
            .find(|line| shown.contains(**line))
            .map(|line| (*line).to_owned())
    };

    match GitHubApp::from_secret_data(value) {
        Ok(None) => assert!(
            values.iter().all(Option::is_none),
            "a Secret with GitHub App keys read as none"
        ),
        Ok(Some(app)) => {
            let number = |index: usize| text(index).and_then(|t| t.parse::<u64>().ok());
            assert_eq!(
                Some(app.app_id()),
                number(0).map(|n| n.to_string()).as_deref()
            );
            match app.installation_id() {
                Some(id) => assert_eq!(Some(id.to_owned()), number(1).map(|n| n.to_string())),
                None => assert_eq!(app.installation_owner(), text(2)),
            }
            let base = text(4).map(|base| Url::parse(base).expect("a base URL that parsed"));
            assert_eq!(app.base_url(), base.as_ref());
            let debug = format!("{app:?}");
            if let Some(line) = shows_key(&debug) {
                panic!("the app's Debug output shows its private key ({line:?}): {debug}");
            }
            if select & 0x80 != 0 {
                jwt_names_the_app(&app);
            }
        }
        Err(error) => {
            for shown in [error.to_string(), format!("{error:?}")] {
                if let Some(line) = shows_key(&shown) {
                    panic!("an error shows the private key ({line:?}): {shown}");
                }
            }
        }
    }
}

/// The app JWT is RS256 and its issuer is the app.
fn jwt_names_the_app(app: &GitHubApp) {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let Ok(jwt) = app.jwt(now) else {
        // A PEM that parses but cannot sign (a damaged key): said by the error.
        return;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT of three parts: {jwt}");
    let decode = |part: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .expect("a JWT part is base64url");
        serde_json::from_slice(&bytes).expect("a JWT part is JSON")
    };
    assert_eq!(decode(parts[0])["alg"], "RS256");
    let claims = decode(parts[1]);
    assert_eq!(claims["iss"].as_str(), Some(app.app_id()));
    assert_eq!(claims["exp"].as_u64(), Some(1_700_000_000 - 60 + 600));
}

fn reply(data: &[u8]) {
    let Ok(reply) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let given = reply.get("token").and_then(Value::as_str);
    match read_access_token(&reply) {
        Ok((token, expires_at)) => {
            assert_eq!(Some(token.clone()), given.map(Token::new));
            assert_eq!(format!("{token:?}"), "Token([redacted])");
            let seconds = reply["expires_at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .expect("a parsed expiry time")
                .as_second();
            let expected =
                UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or_default());
            assert_eq!(expires_at, expected);
            assert!(expires_at <= SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800));
        }
        // One of two fixed texts: never the token, whatever it is.
        Err(detail) => assert!(
            matches!(detail, "no token" | "no expires_at time"),
            "an error that is not a fixed text: {detail}"
        ),
    }
}

/// A line of base64 key material: long, of base64 characters only, with a
/// digit, `+` or `/` (which no word of a message has).
fn is_key_material(line: &str) -> bool {
    line.len() >= SECRET_LINE
        && line
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        && line
            .bytes()
            .any(|b| b.is_ascii_digit() || matches!(b, b'+' | b'/'))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Seeds: Secrets as Flux documents them (by installation ID or owner, with
/// and without a GitHub Enterprise Server URL), keys of the wrong kind, and
/// replies as GitHub documents them ("Create an installation access token
/// for an app").
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    const ID: u8 = 0b10;
    const INSTALLATION: u8 = 0b100;
    const OWNER: u8 = 0b1000;
    const KEY: u8 = 0b1_0000;
    const BASE: u8 = 0b10_0000;
    const TEST_KEY_IF_EMPTY: u8 = 0x40;
    const SIGN: u8 = 0x80;
    let ec_key = p256::SecretKey::from_slice(&[7; 32])
        .expect("7…7 is a P-256 scalar")
        .to_pkcs8_pem(LineEnding::LF)
        .expect("a P-256 key encodes")
        .to_string();
    let secret = |select: u8, fields: [&str; 5]| join(select, &fields.map(str::as_bytes));
    let mut seeds = vec![
        // Complete, signing once.
        secret(
            ID | INSTALLATION | KEY | SIGN,
            ["424242", "5151", "", TEST_KEY, ""],
        ),
        // The key given, the installation by its owner, GHES.
        secret(
            ID | OWNER | KEY | BASE,
            [
                " 42\n",
                "",
                "acme-corp\n",
                TEST_KEY,
                "https://ghe.example.com/api/v3",
            ],
        ),
        // The test key filled in, for mutations of the other fields.
        secret(
            ID | INSTALLATION | KEY | BASE | TEST_KEY_IF_EMPTY,
            ["42", "7", "", "", "http://ghe.example.com:8080/api/v3/"],
        ),
        secret(
            ID | OWNER | KEY | TEST_KEY_IF_EMPTY,
            ["42", "", "octo-org", "", ""],
        ),
        // Mix-ups: the client ID, both installations, a relative URL.
        secret(
            ID | INSTALLATION | KEY | TEST_KEY_IF_EMPTY,
            ["Iv1.8a61f9b3a7aba766", "5151", "", "", ""],
        ),
        secret(
            ID | INSTALLATION | OWNER | KEY | TEST_KEY_IF_EMPTY,
            ["42", "5151", "acme", "", ""],
        ),
        secret(
            ID | INSTALLATION | KEY | BASE | TEST_KEY_IF_EMPTY,
            ["42", "5151", "", "", "ghe.example.com"],
        ),
        // Keys of the wrong kind, and damaged.
        secret(
            ID | INSTALLATION | KEY,
            ["42", "7", "", TEST_PUBLIC_KEY, ""],
        ),
        secret(ID | INSTALLATION | KEY, ["42", "7", "", &ec_key, ""]),
        secret(
            ID | INSTALLATION | KEY,
            ["42", "7", "", &TEST_KEY[..TEST_KEY.len() / 2], ""],
        ),
        secret(ID | INSTALLATION | KEY, ["42", "7", "", "ghp_notakey", ""]),
        // Missing keys; not a GitHub App Secret.
        secret(ID | KEY, ["42", "", "", TEST_KEY, ""]),
        secret(INSTALLATION, ["", "5151", "", "", ""]),
        secret(0, ["", "", "", "", ""]),
    ];
    let replies = [
        json!({
            "token": "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "expires_at": "2016-07-11T22:14:10Z",
            "permissions": {"issues": "write", "contents": "read"},
            "repository_selection": "selected",
            "repositories": [{"id": 1296269, "full_name": "octocat/Hello-World"}]
        }),
        json!({"token": "ghs_x", "expires_at": "2026-12-02T16:00:00.123456789+01:00"}),
        json!({"token": "ghs_x", "expires_at": "1969-12-31T23:59:59Z"}),
        json!({"token": "ghs_x\nInjected: header", "expires_at": "2016-07-11T22:14:10Z"}),
        json!({"token": "", "expires_at": "2016-07-11T22:14:10Z"}),
        json!({"token": 42, "expires_at": 1468275250}),
        json!({"message": "A JSON web token could not be decoded", "documentation_url": "https://docs.github.com/rest"}),
    ];
    for reply in replies {
        seeds.push(join(1, &[reply.to_string().as_bytes()]));
    }
    seeds
}
