//! Go's standard library, where Flux's answer depends on it: how
//! `encoding/json` decodes into a struct, how `encoding/base64` decodes
//! Pub/Sub's data, which timestamps `time.Time` takes from JSON and which
//! URLs `net/url` parses. notification-controller v1.9 is built with Go
//! 1.26 (its `go.mod`); each module cites the part of Go it follows.

pub(crate) mod base64;
pub(crate) mod json;
pub(crate) mod mime;
pub(crate) mod time;
pub(crate) mod url;
