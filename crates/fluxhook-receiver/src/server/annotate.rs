//! Asking Flux to reconcile what a Receiver selects, through its CEL
//! filters: annotating each object (the controller's Receiver reconcile is
//! `controller/reconcile.rs`).

use bytes::Bytes;
use fluxhook_cel::{Document, EvalError, Expression, Variables};
use fluxhook_payload::Webhook;
use fluxhook_trigger::{ObjectRef, Outcome, SelectedObject, Trigger, TriggerError};
use http::HeaderMap;
use serde_json::Value;

use super::auth::{Rejection, Verified};
use super::targeting;
use crate::endpoint::{Endpoint, ResourceTarget};

/// Whether any CEL filter of the Receiver reads the request.
pub(super) fn has_filters(endpoint: &Endpoint) -> bool {
    endpoint.resource_filter.is_some() || endpoint.resources.iter().any(|r| r.filter.is_some())
}

/// The request as the filters see it: `req` and `claims`.
pub(super) struct CelInputs {
    req: Document,
    claims: Document,
}

impl CelInputs {
    /// `req` is the JSON body when the request says it is
    /// `application/json` (for `gcr`, the notification unwrapped from
    /// Pub/Sub), `{}` otherwise, as in Flux; `claims` are a `generic-oidc`
    /// token's, `{}` otherwise. A body that claims to be JSON and is not a
    /// JSON object is refused.
    pub(super) fn new(
        headers: &HeaderMap,
        body: &Bytes,
        verified: &Verified,
    ) -> Result<Self, Rejection> {
        let req = if fluxhook_payload::is_json_content(headers) {
            let json = match &verified.webhook {
                Some(webhook) if webhook.sender() == fluxhook_payload::Sender::Gcr => {
                    webhook.json().map_err(|e| e.to_string())
                }
                _ => serde_json::from_slice(body).map_err(|e| e.to_string()),
            }
            .map_err(|e| Rejection::new(format!("failed to parse request body as JSON: {e}")))?;
            match json {
                Value::Object(object) => Document::from_object(&object).map_err(|e| {
                    Rejection::new(format!("failed to parse request body as JSON: {e}"))
                })?,
                Value::Null => Document::empty(),
                _ => {
                    return Err(Rejection::new(
                        "failed to parse request body as JSON: not an object",
                    ));
                }
            }
        } else {
            Document::empty()
        };
        let claims = match &verified.claims {
            Some(claims) => Document::from_object(claims).map_err(|e| {
                Rejection::new(format!("the OIDC token's claims are unusable: {e}"))
            })?,
            None => Document::empty(),
        };
        Ok(Self { req, claims })
    }
}

/// Asks Flux to reconcile every object the Receiver selects that passes
/// its filters, resource by resource, as Flux does; `true` when none
/// failed. A `*` that matches nothing is no failure; a filter that cannot
/// be evaluated for an object is, for that object (Flux stops at it; the
/// other objects are still asked here). With `delivery` (payload-aware
/// targeting), GitRepositories it cannot change are not asked.
pub(super) async fn request_reconciliation(
    trigger: &Trigger,
    endpoint: &Endpoint,
    cel: Option<&CelInputs>,
    delivery: Option<&Webhook>,
) -> bool {
    let namespace = endpoint.key.namespace.as_str();
    let mut all_requested = true;
    for target in &endpoint.resources {
        let filters: Vec<&Expression> = endpoint
            .resource_filter
            .iter()
            .chain(target.filter.iter())
            .collect();
        let cel = cel.filter(|_| !filters.is_empty());
        let delivery = delivery.filter(|_| targeting::selects_git_repositories(&target.resource));
        let results = match (cel, delivery) {
            // Read with their specs, from the same one list or read.
            (cel, Some(delivery)) => {
                match trigger.select_with_spec(&target.resource, namespace).await {
                    Ok(selected) if selected.is_empty() => {
                        no_match(target, namespace);
                        Vec::new()
                    }
                    Ok(selected) => {
                        let changed = targeting::changed(endpoint, delivery, selected);
                        let accepted = match cel {
                            Some(cel) => accept(&filters, cel, changed, &mut all_requested),
                            None => changed.into_iter().map(|s| s.object).collect(),
                        };
                        trigger.request_reconcile_each(accepted).await
                    }
                    Err(error) => vec![Err(error)],
                }
            }
            (None, None) => {
                let results = trigger
                    .request_reconcile_selected(&target.resource, namespace)
                    .await;
                if results.is_empty() {
                    no_match(target, namespace);
                }
                results
            }
            (Some(cel), None) => match trigger
                .select_with_metadata(&target.resource, namespace)
                .await
            {
                Ok(selected) if selected.is_empty() => {
                    no_match(target, namespace);
                    Vec::new()
                }
                Ok(selected) => {
                    let accepted = accept(&filters, cel, selected, &mut all_requested);
                    trigger.request_reconcile_each(accepted).await
                }
                Err(error) => vec![Err(error)],
            },
        };
        all_requested &= report(results);
    }
    all_requested
}

/// Logs that a `*` selected nothing (only a `*` can); Flux carries on.
fn no_match(target: &ResourceTarget, namespace: &str) {
    let resource = &target.resource;
    request_log!(error!(
        "no '{}' resources found with matching labels {:?} in '{}' namespace",
        resource.kind,
        resource.match_labels.clone().unwrap_or_default(),
        // An empty namespace is the Receiver's, as the selection reads it.
        resource.namespace_or(namespace),
    ));
}

/// The objects for which every filter holds. One whose filters cannot be
/// evaluated is left out and clears `all_requested`.
fn accept(
    filters: &[&Expression],
    cel: &CelInputs,
    selected: Vec<SelectedObject>,
    all_requested: &mut bool,
) -> Vec<ObjectRef> {
    let mut accepted = Vec::with_capacity(selected.len());
    for selected in selected {
        let object = &selected.object;
        match evaluate(filters, cel, &selected) {
            Ok(true) => accepted.push(selected.object),
            Ok(false) => request_log!(info!(
                "resource '{}/{}.{}' NOT annotated because CEL expression returned false",
                object.kind, object.name, object.namespace
            )),
            Err(error) => {
                request_log!(error!(
                    error = %error,
                    "unable to request reconciliation of '{}/{}.{}'",
                    object.kind,
                    object.name,
                    object.namespace
                ));
                *all_requested = false;
            }
        }
    }
    accepted
}

/// Whether every filter holds for `selected`, the first that does not
/// stopping the evaluation.
fn evaluate(
    filters: &[&Expression],
    cel: &CelInputs,
    selected: &SelectedObject,
) -> Result<bool, String> {
    let Value::Object(object) = selected.to_json() else {
        return Err("the object is not a JSON object".to_owned());
    };
    let res = Document::from_object(&object).map_err(|e| e.to_string())?;
    let variables = Variables {
        req: &cel.req,
        res: &res,
        claims: &cel.claims,
    };
    for filter in filters {
        let holds = filter.evaluate_bool(&variables).map_err(|e: EvalError| {
            format!("expression {:?} failed to evaluate: {e}", filter.source())
        })?;
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Logs the outcome of each request; `true` when none failed.
fn report(results: Vec<Result<Outcome, TriggerError>>) -> bool {
    let mut all_requested = true;
    for result in results {
        match result {
            Ok(outcome) => request_log!(info!(
                requested_at = %outcome.requested_at,
                "resource '{}/{}.{}' annotated",
                outcome.object.kind,
                outcome.object.name,
                outcome.object.namespace
            )),
            Err(error) => {
                request_log!(error!(%error, "unable to request reconciliation"));
                all_requested = false;
            }
        }
    }
    all_requested
}
