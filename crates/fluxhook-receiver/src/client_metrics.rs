//! The Kubernetes API client's requests, counted as client-go counts them
//! for a Flux controller: `rest_client_requests_total{code, method, host}`,
//! registered by controller-runtime (`pkg/metrics/client_go_adapter.go`,
//! v0.24.1) and fed by client-go's `updateRequestResultMetric`
//! (`rest/request.go`): `code` is the status code of the final answer, or
//! `<error>` when none came (connection refused, timeout, or the caller gave up
//! waiting, as for a Secret read past its bound); `method` the HTTP
//! method; `host` the API server's host and port as the client's base URL
//! names it. A request kube retries (429, 503, 504 with its default retry
//! policy) counts once, with its final answer, as client-go counts it.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Request, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

/// The labels of `rest_client_requests_total`: `code`, `method`, `host`.
type RequestLabels = [(&'static str, String); 3];

/// The code of a request that got no answer, as client-go labels it.
pub const NO_ANSWER_CODE: &str = "<error>";

/// Counts the Kubernetes API requests of the clients built with it; cheap
/// to clone (clones count into the same series).
///
/// ```
/// use fluxhook_receiver::ClientMetrics;
/// use prometheus_client::registry::Registry;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let metrics = ClientMetrics::new();
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// // Every request of `client` is counted in rest_client_requests_total.
/// let client = metrics.client(kube::Config::infer().await?)?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ClientMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl fmt::Debug for ClientMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientMetrics").finish_non_exhaustive()
    }
}

impl ClientMetrics {
    /// No request counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `rest_client_requests_total` into `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            self.requests.clone(),
        );
    }

    /// A kube client for `config` whose requests are counted: kube's own
    /// stack (TLS, authentication, retries) inside the counting layer.
    pub fn client(&self, config: kube::Config) -> Result<kube::Client, kube::Error> {
        let layer = self.layer(&config.cluster_url);
        Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&layer)
            .build())
    }

    /// The layer counting the requests sent to the API server at
    /// `cluster_url`.
    pub fn layer(&self, cluster_url: &http::Uri) -> CountRequestsLayer {
        CountRequestsLayer {
            metrics: self.clone(),
            host: Arc::from(host_of(cluster_url)),
        }
    }

    fn count(&self, code: String, method: &http::Method, host: &str) {
        self.requests
            .get_or_create(&[
                ("code", code),
                ("method", method.as_str().to_owned()),
                ("host", host.to_owned()),
            ])
            .inc();
    }
}

/// The host and port of the API server as client-go's `base.Host` has them
/// (never user information).
fn host_of(url: &http::Uri) -> String {
    match (url.host(), url.port_u16()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "none".to_owned(),
    }
}

/// A [`Layer`] counting each request's answer in
/// `rest_client_requests_total`.
#[derive(Clone, Debug)]
pub struct CountRequestsLayer {
    metrics: ClientMetrics,
    host: Arc<str>,
}

impl<S> Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests {
            inner,
            metrics: self.metrics.clone(),
            host: Arc::clone(&self.host),
        }
    }
}

/// The service of [`CountRequestsLayer`].
#[derive(Clone, Debug)]
pub struct CountRequests<S> {
    inner: S,
    metrics: ClientMetrics,
    host: Arc<str>,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for CountRequests<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let method = request.method().clone();
        let metrics = self.metrics.clone();
        let host = Arc::clone(&self.host);
        let answer = self.inner.call(request);
        async move {
            // Counted `<error>` if the caller gives up first (a bounded read, a write cut
            // short), as client-go counts a request whose context ended.
            let mut waiting = Waiting {
                metrics,
                method,
                host,
                answered: false,
            };
            let answer = answer.await;
            let code = match &answer {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => NO_ANSWER_CODE.to_owned(),
            };
            waiting.answered = true;
            waiting.metrics.count(code, &waiting.method, &waiting.host);
            answer
        }
        .boxed()
    }
}

/// A request on its way: counted as unanswered if dropped before its answer.
struct Waiting {
    metrics: ClientMetrics,
    method: http::Method,
    host: Arc<str>,
    answered: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.answered {
            self.metrics
                .count(NO_ANSWER_CODE.to_owned(), &self.method, &self.host);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;

    use prometheus_client::encoding::text::encode;
    use tower::ServiceExt;

    use super::*;

    fn exposition(metrics: &ClientMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[tokio::test]
    async fn counts_each_answer_by_code_method_and_host() {
        let metrics = ClientMetrics::new();
        let url: http::Uri = "https://10.96.0.1:443".parse().unwrap();
        let layer = metrics.layer(&url);
        let answering = |status: u16| {
            layer.layer(tower::service_fn(move |_: Request<()>| async move {
                Ok::<_, Infallible>(Response::builder().status(status).body(()).unwrap())
            }))
        };
        let get = || Request::get("/api/v1/secrets").body(()).unwrap();
        let patch = || Request::patch("/apis/x/v1/y/z").body(()).unwrap();
        answering(200).oneshot(get()).await.unwrap();
        answering(200).oneshot(get()).await.unwrap();
        answering(409).oneshot(patch()).await.unwrap();
        let failing = layer.layer(tower::service_fn(|_: Request<()>| async {
            Err::<Response<()>, _>(std::io::Error::other("connection refused"))
        }));
        assert!(failing.oneshot(get()).await.is_err());
        // Given up on before an answer (the caller's timeout): no answer, counted once.
        let unanswered = layer.layer(tower::service_fn(|_: Request<()>| {
            std::future::pending::<Result<Response<()>, Infallible>>()
        }));
        {
            let mut waiting = std::pin::pin!(unanswered.oneshot(patch()));
            assert!(futures::poll!(waiting.as_mut()).is_pending());
        }

        let text = exposition(&metrics);
        for line in [
            r#"rest_client_requests_total{code="200",method="GET",host="10.96.0.1:443"} 2"#,
            r#"rest_client_requests_total{code="409",method="PATCH",host="10.96.0.1:443"} 1"#,
            r#"rest_client_requests_total{code="<error>",method="GET",host="10.96.0.1:443"} 1"#,
            r#"rest_client_requests_total{code="<error>",method="PATCH",host="10.96.0.1:443"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn the_host_is_the_base_urls() {
        let host = |url: &str| host_of(&url.parse().unwrap());
        assert_eq!(host("https://10.96.0.1:443"), "10.96.0.1:443");
        assert_eq!(
            host("https://kubernetes.default.svc"),
            "kubernetes.default.svc"
        );
        assert_eq!(host("http://127.0.0.1:6443/prefix"), "127.0.0.1:6443");
        assert_eq!(
            host("https://user:secret@api.example.com:6443"),
            "api.example.com:6443"
        );
    }
}
