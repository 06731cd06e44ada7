//! The health probes: `/healthz` and `/readyz`.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use fluxhook_receiver::controller::Readiness;

/// `/healthz` answers 200 while the process serves; `/readyz` answers 200
/// once `readiness` is set (the controller has served the Receivers it
/// found at start), 503 before.
pub(crate) fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route(
            "/readyz",
            get(move || {
                let ready = readiness.is_ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
}
