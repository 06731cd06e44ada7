//! The floor of `cargo xtask hotpath`: the least a GitHub webhook receiver
//! must do, and nothing else. hyper over HTTP/1.1, the whole body read,
//! HMAC-SHA256 of it with the secret, compared in constant time with
//! `X-Hub-Signature-256`: 200 if it matches, 400 if not. No routing, no
//! limits, no logs, no metrics.
//!
//! Run as its own process (`xtask __floor <secret>`), with the receiver's
//! runtime (tokio, one worker per core), printing its port on stdout.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::net::TcpListener;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let [secret] = args else {
        return Err("usage: xtask __floor <secret>".into());
    };
    let secret: Arc<[u8]> = secret.as_bytes().into();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(serve(secret))
}

async fn serve(secret: Arc<[u8]>) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the port: {e}"))?
        .port();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{port}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write the port: {e}"))?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let secret = Arc::clone(&secret);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&secret)));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    secret: Arc<[u8]>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let signature = request
        .headers()
        .get("x-hub-signature-256")
        .and_then(|value| value.as_bytes().strip_prefix(b"sha256="))
        .and_then(|hex| hex::decode(hex).ok());
    let body = request.into_body().collect().await.map(|c| c.to_bytes());
    let genuine = match (signature, body) {
        (Some(signature), Ok(body)) => Hmac::<Sha256>::new_from_slice(&secret)
            .map(|mac| mac.chain_update(&body).verify_slice(&signature).is_ok())
            .unwrap_or(false),
        _ => false,
    };
    let (status, text) = if genuine {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::BAD_REQUEST, "invalid signature\n")
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    Ok(response)
}
