//! The webhook server's protections, over raw TCP on loopback: request head
//! size and count, read time limits, the body limit with chunked bodies,
//! the bound on requests in flight, and graceful shutdown.
//!
//! No assertion here is about speed: time limits are set short so the tests
//! end soon, and waits have generous hang guards.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fluxhook_oidc::{HttpKeySource, OidcVerifier};
use fluxhook_receiver::server::{Limits, ReceiverServer};
use fluxhook_receiver::{Endpoint, EndpointIndex, EndpointState};
use fluxhook_trigger::Trigger;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bounds every wait, so a broken server fails the test instead of hanging it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A server with one `generic` Receiver that has nothing to reconcile (so
/// no API server is needed), answering 200 to any POST at `path`.
struct Served {
    addr: SocketAddr,
    path: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

async fn serve(limits: Limits) -> Served {
    let receiver = serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "generic", "namespace": "flux-system"},
        "spec": {"type": "generic", "secretRef": {"name": "token"}, "resources": []},
    }))
    .unwrap();
    let secret = BTreeMap::from([("token".to_owned(), b"s3cr3t".to_vec())]);
    let endpoint = Endpoint::compile(&receiver, Some(&secret)).unwrap();
    let path = endpoint.webhook_path().as_str().to_owned();
    let index = Arc::new(EndpointIndex::default());
    index.publish(EndpointState::Ready(Arc::new(endpoint)));

    // Never called: the Receiver reconciles nothing.
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let trigger = Trigger::new(kube::Client::try_from(config).unwrap());
    let verifier = Arc::new(OidcVerifier::new(Arc::new(HttpKeySource::new().unwrap())));
    let server = ReceiverServer::new(index, trigger, verifier).with_limits(limits);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    Served {
        addr,
        path,
        stop: Some(stop),
        task,
    }
}

impl Served {
    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// A request head for a POST to the Receiver, the connection to close
    /// after the answer.
    fn head(&self, extra_headers: &str) -> String {
        format!(
            "POST {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n",
            self.path
        )
    }

    /// Sends `request` on a new connection and reads the whole answer.
    async fn exchange(&self, request: &[u8]) -> String {
        let mut stream = self.connect().await;
        stream.write_all(request).await.unwrap();
        read_answer(&mut stream).await
    }

    /// Waits until a POST to an unknown path is refused with 503: the one
    /// request slot is taken.
    async fn wait_until_busy(&self) {
        let probe = "POST /hook/probe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        guard(async {
            loop {
                let answer = self.exchange(probe.as_bytes()).await;
                if status(&answer) == 503 {
                    return;
                }
                assert_eq!(status(&answer), 404, "{answer}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

async fn guard<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .expect("the server answers")
}

/// Everything the server sends until it closes the connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    guard(async {
        // A reset after the answer is as good as a close.
        let _ = stream.read_to_end(&mut answer).await;
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of an HTTP/1.1 answer, 0 if there is none.
fn status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn request_heads_over_the_limits_are_refused_with_431() {
    let limits = Limits {
        max_headers: 20,
        max_header_bytes: 16 * 1024,
        ..Limits::default()
    };
    let served = serve(limits).await;

    let fits = served.head("Content-Length: 0\r\n");
    assert_eq!(status(&served.exchange(fits.as_bytes()).await), 200);

    let big = format!(
        "X-Padding: {}\r\nContent-Length: 0\r\n",
        "a".repeat(20 * 1024)
    );
    let answer = served.exchange(served.head(&big).as_bytes()).await;
    assert_eq!(status(&answer), 431, "{answer}");

    let many: String = (0..30).map(|i| format!("X-Header-{i}: {i}\r\n")).collect();
    let answer = served
        .exchange(
            served
                .head(&format!("{many}Content-Length: 0\r\n"))
                .as_bytes(),
        )
        .await;
    assert_eq!(status(&answer), 431, "{answer}");
}

#[tokio::test]
async fn a_head_not_received_in_time_closes_the_connection_as_does_idleness() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let served = serve(limits).await;

    let mut stream = served.connect().await;
    stream
        .write_all(b"POST /hook/x HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(
        answer.is_empty() || status(&answer) == 408,
        "closed without serving: {answer}"
    );

    // A kept-alive connection idle for as long is closed too, so idle
    // connections do not hold connection slots.
    let mut stream = served.connect().await;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
        served.path
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(status(&answer), 200, "answered, then closed: {answer}");
}

#[tokio::test]
async fn a_body_not_received_in_time_is_answered_408() {
    let limits = Limits {
        body_read_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let served = serve(limits).await;

    let mut stream = served.connect().await;
    let request = format!("{}{{", served.head("Content-Length: 10\r\n"));
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(status(&answer), 408, "{answer}");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_answered_413() {
    let limits = Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    };
    let served = serve(limits).await;
    let chunk = |size: usize| format!("{size:x}\r\n{}\r\n", "a".repeat(size));

    let small = format!(
        "{}{}0\r\n\r\n",
        served.head("Transfer-Encoding: chunked\r\n"),
        chunk(1000)
    );
    assert_eq!(status(&served.exchange(small.as_bytes()).await), 200);

    let large = format!(
        "{}{}{}0\r\n\r\n",
        served.head("Transfer-Encoding: chunked\r\n"),
        chunk(1000),
        chunk(1000)
    );
    let answer = served.exchange(large.as_bytes()).await;
    assert_eq!(status(&answer), 413, "{answer}");

    // Content-Length over the limit is refused before the body is read.
    let mut stream = served.connect().await;
    let head = served.head("Content-Length: 2048\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(status(&answer), 413, "{answer}");
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_answered_503() {
    let limits = Limits {
        max_concurrent_requests: 1,
        ..Limits::default()
    };
    let served = serve(limits).await;

    // A request whose body is still coming holds the one slot.
    let mut held = served.connect().await;
    let head = served.head("Content-Length: 2\r\n");
    held.write_all(format!("{head}{{").as_bytes())
        .await
        .unwrap();
    served.wait_until_busy().await;

    // Once it is answered, the slot is free again.
    held.write_all(b"}").await.unwrap();
    assert_eq!(status(&read_answer(&mut held).await), 200);
    let next = served.head("Content-Length: 0\r\n");
    assert_eq!(status(&served.exchange(next.as_bytes()).await), 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_requests_in_flight_finish() {
    let limits = Limits {
        max_concurrent_requests: 1,
        ..Limits::default()
    };
    let mut served = serve(limits).await;

    let mut in_flight = served.connect().await;
    let head = served.head("Content-Length: 2\r\n");
    in_flight
        .write_all(format!("{head}{{").as_bytes())
        .await
        .unwrap();
    served.wait_until_busy().await;

    drop(served.stop.take());
    guard(async {
        while TcpStream::connect(served.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    in_flight.write_all(b"}").await.unwrap();
    let answer = read_answer(&mut in_flight).await;
    assert_eq!(status(&answer), 200, "{answer}");
    guard(served.task).await.unwrap().unwrap();
}
