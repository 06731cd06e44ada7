//! HTTPS for the fakes: a server certificate for `127.0.0.1` and `localhost`, issued by a test
//! CA that no client trusts by default, as a self-managed Git host behind a private CA has.
//!
//! The certificates (in `tls/`, valid until 2126) were made once with OpenSSL:
//! an ECDSA P-256 CA (`basicConstraints=critical,CA:TRUE`), and a P-256 server key whose
//! certificate carries `subjectAltName=IP:127.0.0.1,DNS:localhost` and `serverAuth`.

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The PEM certificate of the CA that issued the fakes' HTTPS certificate.
pub(crate) const CA_PEM: &str = include_str!("../tls/ca.pem");

const SERVER_CERT_PEM: &str = include_str!("../tls/server.pem");
const SERVER_KEY_PEM: &str = include_str!("../tls/server-key.pem");

fn acceptor() -> std::io::Result<TlsAcceptor> {
    let certificates = CertificateDer::pem_slice_iter(SERVER_CERT_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    let key =
        PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).map_err(std::io::Error::other)?;
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(std::io::Error::other)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over HTTPS on `listener` until `stopped` fires or its sender is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    mut stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let acceptor = acceptor()?;
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut stopped => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            // A client that does not trust the CA ends the handshake: nothing to serve then.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
