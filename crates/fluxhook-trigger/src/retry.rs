//! The retry policy of the client a [`Trigger`](crate::Trigger) patches
//! through: bounded by what a webhook sender waits for, not by what a
//! controller can afford.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use tower::buffer::Buffer;
use tower::retry::{Policy, Retry};
use tower::{BoxError, Layer, Service};

/// Retries the requests the API server asks to send again, waiting in all at
/// most a bounded time, so that the webhook sender waiting on the answer gets
/// one before it gives up (GitHub waits 10 s).
///
/// A request is sent again when its answer is 429 Too Many Requests, 503
/// Service Unavailable or 504 Gateway Timeout (the statuses kube and
/// client-go retry: the API server's priority and fairness, an apiserver
/// restarting, a timed-out storage call). Each retry waits
/// the answer's `Retry-After` seconds when it sends them (priority and
/// fairness does, as plain text with the header: `tooManyRequests` in
/// kubernetes/staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go),
/// else a backoff that starts at `first_backoff` and doubles. A wait that
/// would take the total past `max_wait` is not made: the last answer is
/// returned at once. Other answers (a 4xx such as 403 or 404, a 500) and
/// failures without an answer are returned as they are: sending them again
/// changes nothing, or may apply the request twice.
///
/// The bound counts waits, not the time the requests themselves take, so
/// whether a request is retried depends only on the answers, never on how
/// busy the machine is. Apart from it, a `deadline` ends a request that has
/// no answer by then, its attempts and waits included, with an error: an API
/// server (or the network to it) that stopped answering is waited for as
/// long as the sender can wait, not until kube's 295 s read timeout or the
/// API server's own 60 s request timeout (`--request-timeout`, after which
/// it answers 504). A [`Trigger`](crate::Trigger) patch that ends so frees
/// its object for the requests queued behind it. Each retry is a new request: a
/// [`Trigger`](crate::Trigger) patch retried writes the annotation as the
/// first attempt would have, so retrying a request that may have been
/// applied is harmless.
///
/// kube's own retry of the same statuses ([`kube::Config::default_retry`],
/// on by default) makes up to 15 attempts with backoffs growing to minutes;
/// build the client from [`BoundedRetry::client_config`] so that this policy
/// is the only one.
///
/// ```
/// use std::time::Duration;
/// use fluxhook_trigger::{BoundedRetry, Trigger};
/// # use fluxhook_test_apiserver::{RequestMatcher, ResourceType, TestApiServer, Verb};
/// # use kube::config::{KubeConfigOptions, Kubeconfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = TestApiServer::start().await?;
/// # ResourceType::flux().into_iter().for_each(|r| server.register(r));
/// # server.create(serde_json::json!({"apiVersion": "source.toolkit.fluxcd.io/v1",
/// #     "kind": "GitRepository", "metadata": {"name": "podinfo", "namespace": "default"}}))?;
/// # let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml())?;
/// # let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
/// # let patches = RequestMatcher::any().verb(Verb::Patch);
/// # server.faults().fail_next(1, 503, patches.clone());
/// let retry = BoundedRetry::default();
/// let client = kube::client::ClientBuilder::try_from(BoundedRetry::client_config(config))?
///     .with_layer(&retry.layer())
///     .build();
/// let trigger = Trigger::new(client);
///
/// // The API server answered the first patch 503 and the second 200.
/// let repo = fluxhook_trigger::ObjectRef::new("GitRepository", "default", "podinfo");
/// trigger.request_reconcile(&repo).await?;
/// # assert_eq!(server.requests().count(&patches), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedRetry {
    max_retries: u32,
    first_backoff: Duration,
    max_wait: Duration,
    deadline: Option<Duration>,
    /// The state of one request's attempts (the layer clones the policy
    /// for each request).
    retries: u32,
    waited: Duration,
}

impl Default for BoundedRetry {
    /// Three retries, backoffs of 100, 200 and 400 ms, and at most 2 s of
    /// waiting in all: well within the 10 s GitHub and GitLab wait for a
    /// webhook's answer, with room for the requests themselves; and a
    /// deadline of [`BoundedRetry::DEFAULT_DEADLINE`] per request.
    fn default() -> Self {
        Self::new(3, Duration::from_millis(100), Duration::from_secs(2))
            .deadline(Self::DEFAULT_DEADLINE)
    }
}

impl BoundedRetry {
    /// The default [`deadline`](Self::deadline) of a request: 8 s, so that a
    /// delivery whose patch gets no answer is answered 500 before GitHub or
    /// GitLab stop waiting at 10 s.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(8);

    /// At most `max_retries` retries of one request, the first after
    /// `first_backoff` (doubling after each), waiting at most `max_wait` in
    /// all; no deadline.
    pub fn new(max_retries: u32, first_backoff: Duration, max_wait: Duration) -> Self {
        Self {
            max_retries,
            first_backoff,
            max_wait,
            deadline: None,
            retries: 0,
            waited: Duration::ZERO,
        }
    }

    /// The same policy, ending a request without an answer after `deadline`
    /// (its attempts and waits included) with an error, for a caller that
    /// cannot wait longer. The error is not an API status: the request may
    /// still reach the API server.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fluxhook_trigger::BoundedRetry;
    ///
    /// let retry = BoundedRetry::default().deadline(Duration::from_secs(4));
    /// assert_eq!(retry.max_duration(), Some(Duration::from_secs(4)));
    /// assert_eq!(BoundedRetry::never().max_duration(), None);
    /// ```
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The deadline of a request, if it has one.
    pub fn max_duration(&self) -> Option<Duration> {
        self.deadline
    }

    /// No retry and no deadline: every answer is returned as it came.
    pub fn never() -> Self {
        Self::new(0, Duration::ZERO, Duration::ZERO)
    }

    /// `config` without kube's own retry layer, which would otherwise retry
    /// the same answers underneath this one for minutes.
    pub fn client_config(mut config: kube::Config) -> kube::Config {
        config.default_retry = false;
        config
    }

    /// The layer for a `kube::client::ClientBuilder`.
    ///
    /// It buffers the service below it (as `ClientBuilder::build` does,
    /// so it must be built inside a Tokio runtime): the retry sends again
    /// through a clone of that service.
    pub fn layer(self) -> BoundedRetryLayer {
        BoundedRetryLayer { policy: self }
    }

    /// How long to wait before the next attempt (the answer's `Retry-After`,
    /// if it sent one), or `None` to return the answer as it is.
    fn next_wait(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        if self.retries >= self.max_retries {
            return None;
        }
        let backoff = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(self.retries));
        let wait = retry_after.unwrap_or(backoff);
        let waited = self.waited.checked_add(wait)?;
        if waited > self.max_wait {
            return None;
        }
        self.retries += 1;
        self.waited = waited;
        Some(wait)
    }
}

/// Whether the API server asked for the request again.
fn is_retryable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// `Retry-After` in seconds, the only form the API server sends.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get(http::header::RETRY_AFTER)?;
    let seconds = value.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds))
}

impl<B> Policy<Request<Body>, Response<B>, BoxError> for BoundedRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut Request<Body>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        let wait = match result {
            Ok(response) if is_retryable(response.status()) => {
                self.next_wait(retry_after(response))?
            }
            _ => return None,
        };
        tracing::debug!(
            ?wait,
            retry = self.retries,
            "the API server asked for the request again"
        );
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        let body = request.body().try_clone()?;
        let mut clone = Request::builder()
            .method(request.method().clone())
            .uri(request.uri().clone())
            .version(request.version())
            .body(body)
            .ok()?;
        *clone.headers_mut() = request.headers().clone();
        *clone.extensions_mut() = request.extensions().clone();
        Some(clone)
    }
}

/// How many requests may wait for the buffered service below the retry.
const BUFFER: usize = 1024;

/// The layer of [`BoundedRetry`].
#[derive(Debug, Clone, Copy)]
pub struct BoundedRetryLayer {
    policy: BoundedRetry,
}

impl<S> Layer<S> for BoundedRetryLayer
where
    S: Service<Request<Body>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Service = BoundedRetryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundedRetryService {
            inner: Retry::new(self.policy, Buffer::new(inner, BUFFER)),
            deadline: self.policy.deadline,
        }
    }
}

/// The service of [`BoundedRetryLayer`].
pub struct BoundedRetryService<S>
where
    S: Service<Request<Body>>,
{
    inner: Retry<BoundedRetry, Buffer<Request<Body>, S::Future>>,
    deadline: Option<Duration>,
}

impl<S> Clone for BoundedRetryService<S>
where
    S: Service<Request<Body>>,
    S::Future: Send + 'static,
{
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            deadline: self.deadline,
        }
    }
}

/// A request without an answer at its [`BoundedRetry::deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the API server did not answer within {0:?}")]
pub struct DeadlineExceeded(pub Duration);

impl<S> std::fmt::Debug for BoundedRetryService<S>
where
    S: Service<Request<Body>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedRetryService")
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<Body>> for BoundedRetryService<S>
where
    B: Send + 'static,
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send + Sync,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let attempts = self.inner.call(request);
        match self.deadline {
            None => Box::pin(attempts),
            Some(deadline) => Box::pin(async move {
                // Dropping the attempts on time closes their connection, as a
                // client-go request whose context ends does.
                match tokio::time::timeout(deadline, attempts).await {
                    Ok(result) => result,
                    Err(_) => Err(DeadlineExceeded(deadline).into()),
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoffs_double_until_the_retries_or_the_wait_run_out() {
        let mut policy = BoundedRetry::default();
        let waits: Vec<_> = std::iter::from_fn(|| policy.next_wait(None)).collect();
        assert_eq!(
            waits,
            [100, 200, 400].map(Duration::from_millis),
            "three retries"
        );

        let mut short = BoundedRetry::new(10, Duration::from_millis(500), Duration::from_secs(2));
        let waits: Vec<_> = std::iter::from_fn(|| short.next_wait(None)).collect();
        assert_eq!(
            waits,
            [500, 1000].map(Duration::from_millis),
            "a third wait (2 s) would pass the 2 s bound"
        );
    }

    #[test]
    fn retry_after_is_waited_when_it_fits_and_refused_when_it_does_not() {
        let mut policy = BoundedRetry::default();
        assert_eq!(
            policy.next_wait(Some(Duration::from_secs(1))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(policy.next_wait(Some(Duration::from_secs(2))), None);
        assert_eq!(
            policy.next_wait(None),
            Some(Duration::from_millis(200)),
            "the refused wait was not counted"
        );
    }

    #[test]
    fn never_retries_nothing() {
        assert_eq!(BoundedRetry::never().next_wait(None), None);
        assert_eq!(BoundedRetry::never().next_wait(Some(Duration::ZERO)), None);
    }

    #[test]
    fn only_the_statuses_asking_again_are_retried() {
        for code in 100..=599u16 {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            assert_eq!(
                is_retryable(status),
                matches!(code, 429 | 503 | 504),
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_only() {
        let with = |value: &str| {
            Response::builder()
                .header(http::header::RETRY_AFTER, value)
                .body(())
                .map(|response| retry_after(&response))
        };
        assert_eq!(with("1").ok().flatten(), Some(Duration::from_secs(1)));
        assert_eq!(with(" 7 ").ok().flatten(), Some(Duration::from_secs(7)));
        assert_eq!(
            with("Wed, 21 Oct 2015 07:28:00 GMT").ok().flatten(),
            None,
            "an HTTP-date falls back to the backoff"
        );
        assert_eq!(with("-1").ok().flatten(), None);
    }

    proptest::proptest! {
        #[test]
        fn the_waits_never_pass_the_bound(
            max_retries in 0u32..50,
            first_ms in 0u64..10_000,
            max_wait_ms in 0u64..60_000,
            retry_afters in proptest::collection::vec(proptest::option::of(0u64..100_000), 0..60),
        ) {
            let mut policy = BoundedRetry::new(
                max_retries,
                Duration::from_millis(first_ms),
                Duration::from_millis(max_wait_ms),
            );
            let mut total = Duration::ZERO;
            let mut retries = 0;
            for retry_after in retry_afters {
                if let Some(wait) = policy.next_wait(retry_after.map(Duration::from_millis)) {
                    total += wait;
                    retries += 1;
                }
            }
            proptest::prop_assert!(total <= Duration::from_millis(max_wait_ms));
            proptest::prop_assert!(retries <= max_retries);
        }
    }
}
