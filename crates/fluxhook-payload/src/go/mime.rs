//! Whether Go's `mime.ParseMediaType` accepts a `Content-Type`, and the
//! media type it gives (Go 1.26, `src/mime/mediatype.go`:
//! `ParseMediaType`, `checkMediaTypeDisposition`, `consumeToken`,
//! `consumeValue`, `consumeMediaParam`).

/// `ParseMediaType(value)`: the media type, lower-cased, or why Go refuses
/// the value.
pub(crate) fn parse_media_type(value: &str) -> Result<String, &'static str> {
    let base = value.split_once(';').map_or(value, |(base, _)| base);
    let media_type = base.to_lowercase().trim().to_owned();
    check_disposition(&media_type)?;
    let mut plain: Vec<(String, String)> = Vec::new();
    let mut continued: Vec<(String, String, String)> = Vec::new();
    let mut rest = &value[base.len()..];
    while !rest.is_empty() {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some((key, param_value, after)) = consume_param(rest) else {
            if rest.trim() == ";" {
                // A trailing semicolon is no error.
                break;
            }
            return Err("mime: invalid media parameter");
        };
        let duplicate = match key.split_once('*') {
            Some((base_name, _)) => {
                let existing = continued
                    .iter()
                    .find(|(b, k, _)| *b == base_name && *k == key);
                let duplicate = existing.is_some_and(|(_, _, v)| *v != param_value);
                if existing.is_none() {
                    continued.push((base_name.to_owned(), key.clone(), param_value));
                }
                duplicate
            }
            None => {
                let existing = plain.iter().find(|(k, _)| *k == key);
                let duplicate = existing.is_some_and(|(_, v)| *v != param_value);
                if existing.is_none() {
                    plain.push((key, param_value));
                }
                duplicate
            }
        };
        if duplicate {
            return Err("mime: duplicate parameter name");
        }
        rest = after;
    }
    Ok(media_type)
}

fn check_disposition(media_type: &str) -> Result<(), &'static str> {
    let (kind, rest) = consume_token(media_type);
    if kind.is_empty() {
        return Err("mime: no media type");
    }
    if rest.is_empty() {
        return Ok(());
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err("mime: expected slash after first token");
    };
    let (subtype, rest) = consume_token(rest);
    if subtype.is_empty() {
        return Err("mime: expected token after slash");
    }
    if !rest.is_empty() {
        return Err("mime: unexpected content after media subtype");
    }
    Ok(())
}

fn is_tspecial(c: char) -> bool {
    "()<>@,;:\\\"/[]?=".contains(c)
}

fn is_token_char(c: char) -> bool {
    c > ' ' && c < '\u{7f}' && !is_tspecial(c)
}

fn consume_token(text: &str) -> (&str, &str) {
    let end = text.find(|c| !is_token_char(c)).unwrap_or(text.len());
    text.split_at(end)
}

/// A quoted string or a token; `None` when neither starts `text`.
fn consume_value(text: &str) -> Option<(String, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let (token, rest) = consume_token(text);
        return (!token.is_empty()).then(|| (token.to_owned(), rest));
    };
    let bytes = quoted.as_bytes();
    let mut value = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let value = String::from_utf8_lossy(&value).into_owned();
                return Some((value, &quoted[i + 1..]));
            }
            b'\\'
                if bytes
                    .get(i + 1)
                    .is_some_and(|b| is_tspecial(char::from(*b))) =>
            {
                value.push(bytes[i + 1]);
                i += 2;
                continue;
            }
            b'\r' | b'\n' => return None,
            byte => value.push(byte),
        }
        i += 1;
    }
    None
}

/// `; key = value`: the lower-cased key, the value, and what follows.
fn consume_param(text: &str) -> Option<(String, String, &str)> {
    let rest = text.trim_start().strip_prefix(';')?.trim_start();
    let (key, rest) = consume_token(rest);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let (value, rest) = consume_value(rest)?;
    Some((key.to_lowercase(), value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_go_does() {
        for (value, media_type) in [
            ("application/json", "application/json"),
            ("Application/JSON; charset=UTF-8", "application/json"),
            ("application/json;", "application/json"),
            ("application/json; charset=\"utf-8\"", "application/json"),
            ("application/json; a=1; A=1", "application/json"),
            ("  text/plain  ", "text/plain"),
            ("json", "json"),
        ] {
            assert_eq!(
                parse_media_type(value).as_deref(),
                Ok(media_type),
                "{value}"
            );
        }
        for value in [
            "",
            "/json",
            "application/",
            "application/json extra",
            "application/json; charset",
            "application/json; charset=",
            "application/json; charset=\"utf-8",
            "application/json; a=1; a=2",
            "application/json, text/plain",
        ] {
            assert!(parse_media_type(value).is_err(), "{value}");
        }
    }
}
