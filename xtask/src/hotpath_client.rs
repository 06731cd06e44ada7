//! The load generator of `cargo xtask hotpath` and `cargo xtask flood`: a
//! plain HTTP/1.1 client over TCP, so that the client costs little next to
//! the servers it measures and every answer is checked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request as bytes on the wire, sent as is, again and again.
#[derive(Clone)]
pub(crate) struct WireRequest {
    bytes: Arc<[u8]>,
}

impl WireRequest {
    /// `POST path` with `headers` and `body`, keeping the connection alive
    /// unless `close`.
    pub(crate) fn post(path: &str, headers: &[(&str, String)], body: &[u8], close: bool) -> Self {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        if close {
            head.push_str("Connection: close\r\n");
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Self {
            bytes: bytes.into(),
        }
    }
}

/// An answer read back: its status code.
pub(crate) type Status = u16;

/// Sends `request` on `stream` and reads one answer; `buffer` is reused
/// between calls. Errors say what went wrong, for the report.
pub(crate) async fn exchange(
    stream: &mut TcpStream,
    request: &WireRequest,
    buffer: &mut Vec<u8>,
) -> Result<Status, String> {
    stream
        .write_all(&request.bytes)
        .await
        .map_err(|e| format!("write: {e}"))?;
    buffer.clear();
    let head_end = loop {
        if let Some(end) = find_head_end(buffer) {
            break end;
        }
        read_more(stream, buffer).await?;
    };
    let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| "answer head is not text")?;
    let status: Status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 answer: {head:?}"))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .ok_or("answer without Content-Length")?;
    while buffer.len() < head_end + length {
        read_more(stream, buffer).await?;
    }
    Ok(status)
}

fn find_head_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 8192];
    let read = stream
        .read(&mut chunk)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if read == 0 {
        return Err("connection closed before the answer ended".into());
    }
    buffer.extend_from_slice(&chunk[..read]);
    Ok(())
}

/// What one run of [`load`] measured.
#[derive(Debug, Default)]
pub(crate) struct LoadResult {
    /// Answers with the expected status, in the measured window.
    pub(crate) answered: u64,
    /// Answers with the expected status, warm-up included.
    pub(crate) all_answered: u64,
    /// Answers with another status, or failed exchanges.
    pub(crate) failures: u64,
    /// The first failure, to show.
    pub(crate) first_failure: Option<String>,
    /// The measured window.
    pub(crate) elapsed: Duration,
    /// Latency of each answer in the window, in microseconds, sorted.
    pub(crate) latencies_us: Vec<u32>,
}

impl LoadResult {
    pub(crate) fn per_second(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0..=1), in microseconds.
    pub(crate) fn latency_us(&self, q: f64) -> u32 {
        percentile(&self.latencies_us, q)
    }
}

/// The value at quantile `q` of sorted `values`, 0 if empty.
pub(crate) fn percentile(values: &[u32], q: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    let at = ((values.len() - 1) as f64 * q).round() as usize;
    values[at.min(values.len() - 1)]
}

/// Keeps `connections` kept-alive connections to `addr` sending `request`
/// as fast as answers come, for `warm_up` then `measure`; counts answers
/// with status `expected` in the measured window.
pub(crate) async fn load(
    addr: SocketAddr,
    request: &WireRequest,
    expected: Status,
    connections: usize,
    warm_up: Duration,
    measure: Duration,
) -> LoadResult {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (request, measuring, stop) = (request.clone(), measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut result = LoadResult::default();
            let mut buffer = Vec::with_capacity(16 * 1024);
            let mut stream = None;
            while !stop.load(Ordering::Relaxed) {
                let connection = match &mut stream {
                    Some(connection) => connection,
                    None => match TcpStream::connect(addr).await {
                        Ok(connection) => {
                            let _ = connection.set_nodelay(true);
                            stream.insert(connection)
                        }
                        Err(error) => {
                            note_failure(&mut result, format!("connect: {error}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let started = Instant::now();
                let outcome = exchange(connection, &request, &mut buffer).await;
                let counted = measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed);
                match outcome {
                    Ok(status) if status == expected => {
                        result.all_answered += 1;
                        if counted {
                            result.answered += 1;
                            let micros = started.elapsed().as_micros();
                            result
                                .latencies_us
                                .push(u32::try_from(micros).unwrap_or(u32::MAX));
                        }
                    }
                    Ok(status) => {
                        if counted {
                            note_failure(&mut result, format!("answered {status}"));
                        }
                    }
                    Err(error) => {
                        stream = None;
                        if counted {
                            note_failure(&mut result, error);
                        }
                    }
                }
            }
            result
        }));
    }
    tokio::time::sleep(warm_up).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut total = LoadResult {
        elapsed,
        ..LoadResult::default()
    };
    for task in tasks {
        if let Ok(result) = task.await {
            total.answered += result.answered;
            total.all_answered += result.all_answered;
            total.failures += result.failures;
            total.first_failure = total.first_failure.or(result.first_failure);
            total.latencies_us.extend(result.latencies_us);
        }
    }
    total.latencies_us.sort_unstable();
    total
}

fn note_failure(result: &mut LoadResult, failure: String) {
    result.failures += 1;
    result.first_failure.get_or_insert(failure);
}
