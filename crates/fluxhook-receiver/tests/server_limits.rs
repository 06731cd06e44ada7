//! The webhook server's protections, over raw TCP on loopback: request head
//! size and count, read time limits, the body limit with chunked bodies,
//! the lingering close that lets a sender read its 413, the bound on
//! requests handled at once, connection floods and slow heads, and graceful
//! shutdown.
//!
//! No assertion here is about speed: time limits are set short so the tests
//! end soon, waits wait on what the client reads, and every wait has a
//! generous hang guard.
#![allow(clippy::unwrap_used, clippy::panic)]

mod server_support;

use std::time::Duration;

use fluxhook_receiver::server::Limits;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use server_support::{guard, read_answer, serve, status};

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

/// More than the kernel buffers of both ends of a loopback connection hold,
/// so that a sender can finish writing only if the server reads.
const MORE_THAN_SOCKET_BUFFERS: usize = 32 * 1024 * 1024;

#[tokio::test]
async fn a_sender_that_writes_its_whole_refused_body_before_reading_reads_413() {
    let limits = Limits {
        max_body_bytes: 1024,
        max_drain_bytes: 2 * MORE_THAN_SOCKET_BUFFERS,
        ..Limits::default()
    };
    let served = serve(limits).await;

    // As a simple client does: the whole request, then the answer. Closing
    // with the body unread would reset the connection under the writer.
    let mut stream = served.connect().await;
    let head = served.head(&format!("Content-Length: {MORE_THAN_SOCKET_BUFFERS}\r\n"));
    stream.write_all(head.as_bytes()).await.unwrap();
    let body = vec![b'a'; MORE_THAN_SOCKET_BUFFERS];
    guard(stream.write_all(&body))
        .await
        .expect("the server reads the rest of a refused body");
    let answer = read_answer(&mut stream).await;
    assert_eq!(status(&answer), 413, "{answer}");
    assert!(answer.contains("request body too large"), "{answer}");

    // Likewise a head far over the limit, refused with 431 before its end.
    let mut stream = served.connect().await;
    let padding = format!("X-Padding: {}\r\n", "a".repeat(MORE_THAN_SOCKET_BUFFERS));
    guard(stream.write_all(served.head(&padding).as_bytes()))
        .await
        .expect("the server reads the rest of a refused head");
    let answer = read_answer(&mut stream).await;
    assert_eq!(status(&answer), 431, "{answer}");
}

#[tokio::test]
async fn endless_and_slow_senders_are_cut_off() {
    let limits = Limits {
        max_body_bytes: 1024,
        max_drain_bytes: 64 * 1024,
        drain_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let served = serve(limits).await;

    // Endless: past the drain bound the connection is closed, and writing
    // fails.
    let mut stream = served.connect().await;
    let head = served.head("Content-Length: 1099511627776\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    guard(async { while stream.write_all(&chunk).await.is_ok() {} }).await;

    // Slow: the answer comes at once, then the connection is closed at the
    // drain deadline, and writing fails.
    let mut stream = served.connect().await;
    let head = served.head("Content-Length: 1048576\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let mut answer = Vec::new();
    guard(tokio::io::AsyncReadExt::read_to_end(
        &mut reader,
        &mut answer,
    ))
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status(&answer), 413, "{answer}");
    guard(async {
        while writer.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn requests_past_the_concurrency_limit_are_answered_503() {
    let limits = Limits {
        max_concurrent_requests: 1,
        ..Limits::default()
    };
    let served = serve(limits).await;

    // A request whose patch the API server holds takes the one slot.
    let mut held = served.connect().await;
    held.write_all(served.held_request().as_bytes())
        .await
        .unwrap();
    served.api.arrived().await;
    let next = served.head("Content-Length: 0\r\n");
    assert_eq!(status(&served.exchange(next.as_bytes()).await), 503);

    // Once it is answered, the slot is free again.
    served.api.release();
    assert_eq!(status(&read_answer(&mut held).await), 200);
    assert_eq!(status(&served.exchange(next.as_bytes()).await), 200);
}

#[tokio::test]
async fn a_body_still_arriving_takes_no_handler_slot() {
    let limits = Limits {
        max_concurrent_requests: 1,
        ..Limits::default()
    };
    let served = serve(limits).await;

    let mut slow = served.connect().await;
    let head = served.head("Content-Length: 2\r\n");
    slow.write_all(format!("{head}{{").as_bytes())
        .await
        .unwrap();
    let next = served.head("Content-Length: 0\r\n");
    assert_eq!(status(&served.exchange(next.as_bytes()).await), 200);
    slow.write_all(b"}").await.unwrap();
    assert_eq!(status(&read_answer(&mut slow).await), 200);
}

/// A request head that never ends, sent on a connection from `from`.
async fn trickle(served: &server_support::Served, from: &str) -> TcpStream {
    let mut stream = served.connect_from(from).await;
    stream
        .write_all(b"POST /hook/slow HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn at_capacity_a_new_request_is_served_and_the_flood_loses_its_oldest() {
    const CAPACITY: usize = 16;
    // The flood from another address than the Git host's, then from the
    // same (as behind a proxy).
    for flood_address in ["127.0.0.2", "127.0.0.1"] {
        let limits = Limits {
            max_connections: CAPACITY,
            ..Limits::default()
        };
        let served = serve(limits).await;

        // Heads that never end fill every place. The kernel hands
        // connections to the server in the order they were made.
        let mut flood = Vec::new();
        for _ in 0..CAPACITY {
            flood.push(trickle(&served, flood_address).await);
        }
        let genuine = served.head("Content-Length: 0\r\n");
        let answer = served.exchange(genuine.as_bytes()).await;
        assert_eq!(status(&answer), 200, "from {flood_address}: {answer}");
        assert_eq!(
            read_answer(&mut flood[0]).await,
            "",
            "the flood's oldest was closed"
        );
        let metrics = served.metrics.encode();
        assert!(
            metrics.contains("fluxhook_receiver_connections_closed_total{reason=\"evicted\"} 1"),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn unfinished_heads_over_the_byte_budget_evict_the_flood() {
    let limits = Limits {
        max_unfinished_bytes: 100 * 1024,
        ..Limits::default()
    };
    let served = serve(limits).await;

    // Three heads of 40 KiB that never end: the third goes over 100 KiB.
    let mut flood = Vec::new();
    for _ in 0..3 {
        let mut stream = trickle(&served, "127.0.0.2").await;
        let padding = format!("\r\nX-Padding: {}", "a".repeat(40 * 1024));
        stream.write_all(padding.as_bytes()).await.unwrap();
        flood.push(stream);
    }
    assert_eq!(read_answer(&mut flood[0]).await, "", "evicted");
    let genuine = served.head("Content-Length: 0\r\n");
    assert_eq!(status(&served.exchange(genuine.as_bytes()).await), 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_requests_in_flight_finish() {
    let limits = Limits {
        max_concurrent_requests: 1,
        ..Limits::default()
    };
    let mut served = serve(limits).await;

    let mut in_flight = served.connect().await;
    in_flight
        .write_all(served.held_request().as_bytes())
        .await
        .unwrap();
    served.api.arrived().await;

    drop(served.stop.take());
    guard(async {
        while TcpStream::connect(served.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    served.api.release();
    let answer = read_answer(&mut in_flight).await;
    assert_eq!(status(&answer), 200, "{answer}");
    // Closed by the client too, so the server need not linger for it.
    drop(in_flight);
    guard(served.task).await.unwrap().unwrap();
}

/// Stops `served` and waits until its listener is closed: new connections
/// are refused from then on.
async fn stop_accepting(served: &mut server_support::Served) {
    drop(served.stop.take());
    guard(async {
        while TcpStream::connect(served.addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Reads one answer on a connection kept alive: its head, then as many
/// bytes of body as it declares.
async fn read_one_answer(stream: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    guard(async {
        loop {
            let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().unwrap());
                if answer.len() >= end + 4 + length {
                    return;
                }
            }
            let read = stream.read(&mut buf).await.unwrap();
            assert_ne!(read, 0, "closed before a whole answer");
            answer.extend_from_slice(&buf[..read]);
        }
    })
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn at_shutdown_a_connection_owing_its_request_is_still_answered() {
    // Longer than the hang guard: only the shutdown can end these
    // connections early.
    let limits = Limits {
        header_read_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    let mut served = serve(limits).await;
    let request = served
        .head("Content-Length: 0\r\n")
        .replace("Connection: close\r\n", "");
    let (first_half, second_half) = request.split_at(request.len() / 2);

    // A Git host's connection, made just before the shutdown, whose
    // request comes after it; and one partway through its head.
    let mut fresh = served.connect().await;
    let mut partway = served.connect().await;
    partway.write_all(first_half.as_bytes()).await.unwrap();
    // A connection idle after its answer, kept alive.
    let mut idle = served.connect().await;
    idle.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(status(&read_one_answer(&mut idle).await), 200);

    stop_accepting(&mut served).await;

    // The idle one is closed at once (the head timeout is far off).
    assert_eq!(read_answer(&mut idle).await, "");
    for (stream, rest) in [(&mut fresh, request.as_str()), (&mut partway, second_half)] {
        stream.write_all(rest.as_bytes()).await.unwrap();
        // Answered, then closed (read to the end).
        let answer = read_answer(stream).await;
        assert_eq!(status(&answer), 200, "{answer}");
    }
    drop((fresh, partway, idle));
    guard(served.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn at_shutdown_connections_in_the_listen_backlog_are_served() {
    use fluxhook_receiver::server::serve as serve_app;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Made before the server accepts anything: in the kernel's backlog.
    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(TcpStream::connect(addr).await.unwrap());
    }
    let router = axum::Router::new().fallback(|| async { "served\n" });
    // Shut down from the start: the accept loop may stop before accepting
    // any of them.
    let task = tokio::spawn(async move {
        serve_app(listener, router, &Limits::default(), std::future::ready(())).await
    });
    for stream in &mut streams {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let answer = read_answer(stream).await;
        assert_eq!(status(&answer), 200, "{answer}");
    }
    drop(streams);
    guard(task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_delivery_the_api_does_not_answer_in_time_is_answered_500() {
    // The held API never answers the patch until released: whatever the
    // machine's speed, only the timeout can answer first.
    let limits = Limits {
        reconcile_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let served = serve(limits).await;
    let answer = served.exchange(served.held_request().as_bytes()).await;
    assert_eq!(status(&answer), 500, "{answer}");
    served.api.arrived().await;
}
