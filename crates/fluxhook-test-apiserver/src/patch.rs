//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902) over `serde_json::Value`.

use serde_json::{Map, Value};

/// Applies an RFC 7386 merge patch: objects merge key by key, `null` removes a key, anything
/// else (arrays included) replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.as_str()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Why a JSON patch did not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct JsonPatchError(String);

fn fail<T>(message: String) -> Result<T, JsonPatchError> {
    Err(JsonPatchError(message))
}

/// Splits an RFC 6901 JSON pointer into unescaped reference tokens.
fn pointer_tokens(pointer: &str) -> Result<Vec<String>, JsonPatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return fail(format!(
            "invalid JSON pointer {pointer:?}: must start with '/'"
        ));
    };
    Ok(rest
        .split('/')
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, JsonPatchError> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let valid = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'));
    match token.parse::<usize>() {
        Ok(index) if valid && (index < len || (allow_end && index == len)) => Ok(index),
        _ => fail(format!("array index {token:?} out of bounds")),
    }
}

fn lookup<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => array_index(token, items.len(), false)
            .ok()
            .and_then(|index| items.get(index)),
        _ => None,
    })
}

fn lookup_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => {
            let index = array_index(token, items.len(), false).ok()?;
            items.get_mut(index)
        }
        _ => None,
    })
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), JsonPatchError> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match lookup_mut(doc, parent) {
        Some(Value::Object(map)) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = array_index(last, items.len(), true)?;
            items.insert(index, value);
            Ok(())
        }
        _ => fail(format!("missing parent for path /{}", tokens.join("/"))),
    }
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, JsonPatchError> {
    let Some((last, parent)) = tokens.split_last() else {
        return fail("cannot remove the whole document".to_owned());
    };
    let removed = match lookup_mut(doc, parent) {
        Some(Value::Object(map)) => map.remove(last),
        Some(Value::Array(items)) => {
            let index = array_index(last, items.len(), false)?;
            Some(items.remove(index))
        }
        _ => None,
    };
    removed.map_or_else(
        || fail(format!("path /{} does not exist", tokens.join("/"))),
        Ok,
    )
}

fn field<'a>(operation: &'a Value, name: &str) -> Result<&'a Value, JsonPatchError> {
    operation
        .get(name)
        .map_or_else(|| fail(format!("operation is missing {name:?}")), Ok)
}

fn pointer_field(operation: &Value, name: &str) -> Result<Vec<String>, JsonPatchError> {
    match field(operation, name)?.as_str() {
        Some(pointer) => pointer_tokens(pointer),
        None => fail(format!("{name:?} must be a string")),
    }
}

/// Applies an RFC 6902 JSON patch (an array of operations) to a copy of `doc`.
pub(crate) fn json_patch(doc: &Value, operations: &Value) -> Result<Value, JsonPatchError> {
    let Some(operations) = operations.as_array() else {
        return fail("a JSON patch must be an array of operations".to_owned());
    };
    let mut doc = doc.clone();
    for operation in operations {
        let path = pointer_field(operation, "path")?;
        match field(operation, "op")?.as_str().unwrap_or_default() {
            "add" => add(&mut doc, &path, field(operation, "value")?.clone())?,
            "remove" => {
                remove(&mut doc, &path)?;
            }
            "replace" => {
                remove(&mut doc, &path)?;
                add(&mut doc, &path, field(operation, "value")?.clone())?;
            }
            "move" => {
                let from = pointer_field(operation, "from")?;
                if path.starts_with(&from) && path.len() > from.len() {
                    return fail("cannot move a value into one of its children".to_owned());
                }
                let value = remove(&mut doc, &from)?;
                add(&mut doc, &path, value)?;
            }
            "copy" => {
                let from = pointer_field(operation, "from")?;
                let Some(value) = lookup(&doc, &from).cloned() else {
                    return fail(format!("copy from /{} does not exist", from.join("/")));
                };
                add(&mut doc, &path, value)?;
            }
            "test" => {
                if lookup(&doc, &path) != Some(field(operation, "value")?) {
                    return fail(format!("test operation failed at /{}", path.join("/")));
                }
            }
            other => return fail(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_rfc7386_examples() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
        merge_patch(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "list": [3], "new": {"x": null, "y": 1}}),
        );
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "list": [3], "new": {"y": 1}})
        );
        merge_patch(&mut doc, &json!("scalar"));
        assert_eq!(doc, json!("scalar"));
    }

    #[test]
    fn json_patch_operations() {
        let doc = json!({"metadata": {"annotations": {"a/b": "1"}}, "items": [1, 2]});
        let patched = json_patch(
            &doc,
            &json!([
                {"op": "test", "path": "/metadata/annotations/a~1b", "value": "1"},
                {"op": "add", "path": "/items/-", "value": 3},
                {"op": "add", "path": "/items/0", "value": 0},
                {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "2"},
                {"op": "copy", "from": "/items/3", "path": "/last"},
                {"op": "move", "from": "/last", "path": "/moved"},
                {"op": "remove", "path": "/items/1"}
            ]),
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"metadata": {"annotations": {"a/b": "2"}}, "items": [0, 2, 3], "moved": 3})
        );
    }

    #[test]
    fn json_patch_errors() {
        let doc = json!({"a": [1]});
        for bad in [
            json!({"op": "add"}),
            json!([{"op": "remove", "path": "/missing"}]),
            json!([{"op": "add", "path": "/a/5", "value": 1}]),
            json!([{"op": "add", "path": "/a/01", "value": 1}]),
            json!([{"op": "test", "path": "/a/0", "value": 2}]),
            json!([{"op": "replace", "path": "/x/y", "value": 2}]),
            json!([{"op": "move", "from": "/a", "path": "/a/0"}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "a", "value": 1}]),
        ] {
            assert!(json_patch(&doc, &bad).is_err(), "{bad} applied");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..10).prop_map(Value::from),
            "[ab]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[ab]", inner, 0..3)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Merging a patch twice gives what merging it once gave (merge patches are idempotent).
        #[test]
        fn merge_patch_is_idempotent(doc in json_value(), patch in json_value()) {
            let mut once = doc.clone();
            merge_patch(&mut once, &patch);
            let mut twice = once.clone();
            merge_patch(&mut twice, &patch);
            prop_assert_eq!(once, twice);
        }

        /// Arbitrary operations never panic.
        #[test]
        fn json_patch_never_panics(doc in json_value(), operations in json_value(), path in "(/[ab01-]{0,2}){0,3}") {
            let _ = json_patch(&doc, &operations);
            let _ = json_patch(&doc, &json!([{"op": "add", "path": path, "value": 1}]));
            let _ = json_patch(&doc, &json!([{"op": "move", "from": path, "path": "/a"}]));
        }
    }
}
