//! JSON documents as CEL values, converted the way cel-go sees what Flux
//! hands it.

use cel::common::types::{CelBool, CelDouble, CelList, CelMap, CelMapKey, CelNull, CelString};
use cel::common::value::Val;
use std::collections::HashMap;
use std::fmt;

/// The deepest JSON document accepted: serde_json's own parser stops at 128
/// levels, so only a document built by hand can be deeper.
pub const MAX_DOCUMENT_DEPTH: usize = 128;

/// A JSON object converted to a CEL value once, to be bound to a variable
/// (`req`, `res`, `claims`) in any number of evaluations.
///
/// Numbers become CEL `double`s, as in Flux, whose Go JSON decoding yields
/// `float64` for every number: `req.count == 1` holds for `{"count": 1}`,
/// while `req.count + 1` is an error (`double + int`).
pub struct Document(Box<dyn Val>);

/// A JSON document nested deeper than [`MAX_DOCUMENT_DEPTH`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the JSON document nests deeper than {MAX_DOCUMENT_DEPTH} levels")]
pub struct DocumentTooDeep;

impl Document {
    /// Converts a JSON object.
    ///
    /// ```
    /// use fluxhook_cel::Document;
    ///
    /// let body = serde_json::json!({"tag": "v1.0.0", "count": 3});
    /// let serde_json::Value::Object(object) = body else { unreachable!() };
    /// let req = Document::from_object(&object)?;
    /// # Ok::<(), fluxhook_cel::DocumentTooDeep>(())
    /// ```
    pub fn from_object(
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, DocumentTooDeep> {
        object_to_cel(object, 1).map(Document)
    }

    /// The empty object, `{}`: Flux's `req` for a request whose body is not
    /// JSON, and `claims` outside `generic-oidc` receivers.
    pub fn empty() -> Self {
        Document(Box::new(CelMap::default()))
    }

    pub(crate) fn from_val(value: Box<dyn Val>) -> Self {
        Document(value)
    }

    pub(crate) fn as_val(&self) -> &dyn Val {
        self.0.as_ref()
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Document").field(&self.0).finish()
    }
}

/// Converts an object nested `depth` levels deep (the top one is 1).
fn object_to_cel(
    object: &serde_json::Map<String, serde_json::Value>,
    depth: usize,
) -> Result<Box<dyn Val>, DocumentTooDeep> {
    if depth > MAX_DOCUMENT_DEPTH {
        return Err(DocumentTooDeep);
    }
    let mut map = HashMap::with_capacity(object.len());
    for (key, value) in object {
        map.insert(CelMapKey::from(key.clone()), to_cel(value, depth)?);
    }
    Ok(Box::new(CelMap::from(map)))
}

/// Converts a value held by a container nested `depth` levels deep.
fn to_cel(value: &serde_json::Value, depth: usize) -> Result<Box<dyn Val>, DocumentTooDeep> {
    Ok(match value {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(b) => Box::new(CelBool::from(*b)),
        // Every JSON number is a float64 to Go's encoding/json.
        serde_json::Value::Number(n) => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Box::new(CelString::from(s.clone())),
        serde_json::Value::Array(items) => {
            if depth + 1 > MAX_DOCUMENT_DEPTH {
                return Err(DocumentTooDeep);
            }
            let items = items.iter().map(|item| to_cel(item, depth + 1));
            Box::new(CelList::from(items.collect::<Result<Vec<_>, _>>()?))
        }
        serde_json::Value::Object(object) => object_to_cel(object, depth + 1)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rejects_documents_deeper_than_the_limit() {
        // The top-level object is one level: 127 arrays inside fit, 128 don't.
        let mut value = serde_json::json!("leaf");
        for _ in 0..MAX_DOCUMENT_DEPTH {
            value = serde_json::json!([value]);
        }
        let shallow = serde_json::Map::from_iter([("a".to_owned(), value.clone())]);
        assert_eq!(Document::from_object(&shallow).err(), Some(DocumentTooDeep));
        let serde_json::Value::Array(mut items) = value else {
            unreachable!()
        };
        let within = serde_json::Map::from_iter([("a".to_owned(), items.remove(0))]);
        assert!(Document::from_object(&within).is_ok());
    }
}
