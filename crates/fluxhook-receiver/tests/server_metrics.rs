//! Every answer of the webhook server is counted as notification-controller
//! counts its receiver server's requests (slok/go-http-metrics with the
//! prefix `gotk_receiver`), those of the limit layers and of hyper's head
//! limits included; read back from `GET /metrics`.
#![allow(clippy::unwrap_used, clippy::panic)]

mod server_support;

use std::time::Duration;

use fluxhook_receiver::server::Limits;
use tokio::io::AsyncWriteExt;

use server_support::{read_answer, serve, status};

/// The series of one answer: `service` is empty and `handler` is `/hook/`,
/// as in Flux.
fn http_series(name: &str, method: &str, code: u16) -> String {
    format!(
        r#"gotk_receiver_http_{name}{{service="",handler="/hook/",method="{method}",code="{code}"}}"#
    )
}

/// The value of the sample `series` in `text`, 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn every_answer_is_counted_with_notification_controllers_series() {
    let limits = Limits {
        max_body_bytes: 1024,
        max_header_bytes: 96 * 1024,
        body_read_timeout: Duration::from_millis(200),
        max_concurrent_requests: 1,
        ..Limits::default()
    };
    let served = serve(limits).await;
    let path = served.path.clone();
    let request = |method: &str, path: &str, extra: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n")
    };
    let mut expected: Vec<(&str, u16)> = Vec::new();
    let mut answer = |text: String, code: u16, method: &'static str| {
        assert_eq!(status(&text), code, "{text}");
        expected.push((method, code));
    };

    // The handler's answers.
    answer(
        served
            .exchange(request("POST", &path, "Content-Length: 2\r\n\r\n{}").as_bytes())
            .await,
        200,
        "POST",
    );
    answer(
        served
            .exchange(request("POST", "/hook/unknown", "Content-Length: 0\r\n").as_bytes())
            .await,
        404,
        "POST",
    );
    answer(
        served.exchange(request("GET", &path, "").as_bytes()).await,
        405,
        "GET",
    );
    answer(
        served.exchange(request("BREW", &path, "").as_bytes()).await,
        405,
        "unknown",
    );
    // The body limits.
    answer(
        served
            .exchange(request("POST", &path, "Content-Length: 4096\r\n").as_bytes())
            .await,
        413,
        "POST",
    );
    answer(
        served
            .exchange(request("POST", &path, "Content-Length: 10\r\n\r\n{").as_bytes())
            .await,
        408,
        "POST",
    );
    // The bound on requests handled at once.
    let mut held = served.connect().await;
    held.write_all(served.held_request().as_bytes())
        .await
        .unwrap();
    served.api.arrived().await;
    answer(
        served
            .exchange(request("POST", &path, "Content-Length: 0\r\n").as_bytes())
            .await,
        503,
        "POST",
    );
    served.api.release();
    answer(read_answer(&mut held).await, 200, "POST");
    // Heads hyper refuses before any layer sees them.
    let padding = format!("X-Padding: {}\r\n", "a".repeat(100 * 1024));
    answer(
        served
            .exchange(request("POST", &path, &padding).as_bytes())
            .await,
        431,
        "unknown",
    );
    let long_path = format!("/hook/{}", "a".repeat(70 * 1024));
    answer(
        served
            .exchange(request("POST", &long_path, "").as_bytes())
            .await,
        414,
        "unknown",
    );
    answer(
        served.exchange(b"NOT HTTP AT ALL\r\n\r\n").await,
        400,
        "unknown",
    );

    let text = served.scrape().await;
    for (method, code) in &expected {
        let count = expected
            .iter()
            .filter(|(m, c)| (m, c) == (method, code))
            .count();
        #[allow(clippy::cast_precision_loss)]
        let count = count as f64;
        for name in [
            "request_duration_seconds_count",
            "response_size_bytes_count",
        ] {
            let series = http_series(name, method, *code);
            assert_eq!(sample(&text, &series), count, "{series} in\n{text}");
        }
    }
    let total: f64 = text
        .lines()
        .filter(|line| line.starts_with("gotk_receiver_http_request_duration_seconds_count{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let answers = expected.len() as f64;
    assert_eq!(total, answers, "one sample per answer:\n{text}");
    assert_eq!(
        sample(
            &text,
            r#"gotk_receiver_http_requests_inflight{service="",handler="/hook/"}"#
        ),
        0.0
    );
    // Flux's bucket boundaries (prometheus.DefBuckets) and response sizes.
    // Flux's bucket boundaries: prometheus.DefBuckets for durations,
    // ExponentialBuckets(100, 10, 8) for sizes.
    let bounds = |name: &str| -> Vec<String> {
        let prefix = format!("gotk_receiver_http_{name}_bucket{{le=\"");
        let labels = r#"",service="",handler="/hook/",method="POST",code="404"}"#;
        text.lines()
            .filter_map(|line| line.strip_prefix(&prefix)?.split_once(labels))
            .map(|(le, _)| le.to_owned())
            .collect()
    };
    assert_eq!(
        bounds("request_duration_seconds"),
        [
            "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
            "+Inf"
        ]
    );
    assert_eq!(
        bounds("response_size_bytes"),
        [
            "100.0",
            "1000.0",
            "10000.0",
            "100000.0",
            "1000000.0",
            "10000000.0",
            "100000000.0",
            "1000000000.0",
            "+Inf"
        ]
    );
    // "not found\n" is 10 bytes.
    let size = r#"gotk_receiver_http_response_size_bytes_bucket{le="100.0",service="",handler="/hook/",method="POST",code="404"}"#;
    assert_eq!(sample(&text, size), 1.0);

    // fluxhook's own series, per Receiver: the Receivers' answers only.
    let generic = r#"namespace="flux-system",name="generic",type="generic""#;
    let held = r#"namespace="flux-system",name="held",type="generic""#;
    for (series, value) in [
        (
            format!("fluxhook_receiver_requests_total{{{generic},code=\"200\"}}"),
            1.0,
        ),
        (
            format!("fluxhook_receiver_requests_total{{{held},code=\"200\"}}"),
            1.0,
        ),
        (
            r#"fluxhook_receiver_unmatched_requests_total{code="404"}"#.to_owned(),
            1.0,
        ),
    ] {
        assert_eq!(sample(&text, &series), value, "{series} in\n{text}");
    }
    assert!(!text.contains(&path[6..]), "no webhook path in the metrics");
}
