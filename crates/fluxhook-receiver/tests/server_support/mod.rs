//! A webhook server on loopback for the tests of its limits and metrics,
//! spoken to over raw TCP, with an API server whose answers the test holds.
#![allow(clippy::unwrap_used, clippy::panic, dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fluxhook_oidc::{HttpKeySource, OidcVerifier};
use fluxhook_receiver::server::{Limits, ReceiverServer, serve as serve_app};
use fluxhook_receiver::{Endpoint, EndpointIndex, EndpointState, Metrics};
use fluxhook_trigger::Trigger;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Bounds every wait, so a broken server fails the test instead of hanging it.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// A server with two `generic` Receivers: one that has nothing to
/// reconcile, answering 200 to any POST at `path` without an API call, and
/// one at `held_path` whose GitRepository patch goes to [`HeldApi`].
pub struct Served {
    pub addr: SocketAddr,
    pub path: String,
    pub held_path: String,
    pub api: HeldApi,
    pub metrics: Arc<Metrics>,
    pub metrics_addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<io::Result<()>>,
}

fn endpoint(name: &str, resources: serde_json::Value) -> Endpoint {
    let receiver = serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"type": "generic", "secretRef": {"name": "token"}, "resources": resources},
    }))
    .unwrap();
    let secret = BTreeMap::from([("token".to_owned(), b"s3cr3t".to_vec())]);
    Endpoint::compile(&receiver, Some(&secret)).unwrap()
}

pub async fn serve(limits: Limits) -> Served {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("fluxhook_receiver=debug")
        .with_test_writer()
        .try_init();
    let index = Arc::new(EndpointIndex::default());
    let generic = endpoint("generic", json!([]));
    let held = endpoint("held", json!([{"kind": "GitRepository", "name": "app"}]));
    let path = generic.webhook_path().as_str().to_owned();
    let held_path = held.webhook_path().as_str().to_owned();
    index.publish(EndpointState::Ready(Arc::new(generic)));
    index.publish(EndpointState::Ready(Arc::new(held)));

    let api = HeldApi::start().await;
    let config = kube::Config::new(api.url.parse().unwrap());
    let trigger = Trigger::new(kube::Client::try_from(config).unwrap());
    let verifier = Arc::new(OidcVerifier::new(Arc::new(HttpKeySource::new().unwrap())));
    let metrics = Arc::new(Metrics::new());
    let server = ReceiverServer::new(index, trigger, verifier)
        .with_limits(limits)
        .with_metrics(Arc::clone(&metrics));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));

    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics_listener.local_addr().unwrap();
    let router = Arc::clone(&metrics).router();
    tokio::spawn(async move {
        serve_app(
            metrics_listener,
            router,
            &Limits::default(),
            std::future::pending(),
        )
        .await
    });
    Served {
        addr,
        path,
        held_path,
        api,
        metrics,
        metrics_addr,
        stop: Some(stop),
        task,
    }
}

impl Served {
    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// A connection from the loopback address `ip` (any of 127.0.0.0/8).
    pub async fn connect_from(&self, ip: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        socket.connect(self.addr).await.unwrap()
    }

    /// A request head for a POST to the Receiver with nothing to
    /// reconcile, the connection to close after the answer.
    pub fn head(&self, extra_headers: &str) -> String {
        format!(
            "POST {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n",
            self.path
        )
    }

    /// A whole request to the Receiver whose patch the API server holds.
    pub fn held_request(&self) -> String {
        format!(
            "POST {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.held_path
        )
    }

    /// Sends `request` on a new connection and reads the whole answer.
    pub async fn exchange(&self, request: &[u8]) -> String {
        let mut stream = self.connect().await;
        stream.write_all(request).await.unwrap();
        read_answer(&mut stream).await
    }

    /// `GET /metrics` from the metrics server: the exposition text.
    pub async fn scrape(&self) -> String {
        let mut stream = TcpStream::connect(self.metrics_addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_answer(&mut stream).await;
        assert_eq!(status(&answer), 200, "{answer}");
        answer
    }
}

pub async fn guard<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the server answers")
}

/// Everything the server sends until it closes the connection.
pub async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    guard(async {
        // A reset after the answer is as good as a close.
        let _ = stream.read_to_end(&mut answer).await;
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of an HTTP/1.1 answer, 0 if there is none.
pub fn status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// An API server that reads each request, says it arrived, and answers it
/// (a successful patch of GitRepository `app`) only once released.
pub struct HeldApi {
    pub url: String,
    arrived: Mutex<mpsc::UnboundedReceiver<()>>,
    release: watch::Sender<bool>,
}

impl HeldApi {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (arrived_tx, arrived) = mpsc::unbounded_channel();
        let (release, released) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(hold(stream, arrived_tx.clone(), released.clone()));
            }
        });
        Self {
            url,
            arrived: Mutex::new(arrived),
            release,
        }
    }

    /// Waits until a request has arrived.
    pub async fn arrived(&self) {
        guard(self.arrived.lock().await.recv()).await.unwrap();
    }

    /// Answers the requests held and those to come.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

async fn hold(
    mut stream: TcpStream,
    arrived: mpsc::UnboundedSender<()>,
    mut released: watch::Receiver<bool>,
) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let Ok(read) = stream.read(&mut buf).await else {
            return;
        };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buf[..read]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while request.len() < head_end + length {
        let Ok(read) = stream.read(&mut buf).await else {
            return;
        };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buf[..read]);
    }
    let _ = arrived.send(());
    let _ = released.wait_for(|released| *released).await;
    let body = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "app", "namespace": "flux-system"},
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
}
