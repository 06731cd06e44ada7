//! Asks Flux to reconcile objects now, coalescing concurrent requests per
//! object.
//!
//! [`Coalescer`] runs one idempotent async operation per key on behalf of many
//! concurrent requests: at most one run in flight and one queued per key, and
//! every request is answered by a run that began after it arrived.

mod coalesce;

pub use coalesce::{Coalescer, RunAbandoned};
