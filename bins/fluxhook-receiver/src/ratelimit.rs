//! `--kube-api-qps` and `--kube-api-burst`: client-side rate limiting of Kubernetes API
//! calls, as Flux does it.
//!
//! fluxcd/pkg runtime/client `GetConfigOrDie` (v0.110.0) turns client-side limits off when
//! the API server runs API Priority and Fairness (fluxcd/cli-utils `flowcontrol.IsEnabled`:
//! a `HEAD /livez/ping` whose answer carries `X-Kubernetes-PF-FlowSchema-UID`), and sets
//! the flags' QPS and burst otherwise. client-go then waits before each request for a token
//! of a bucket of `burst` tokens refilled at `qps` a second
//! (`flowcontrol.NewTokenBucketRateLimiter`, golang.org/x/time/rate); a QPS of 0 means
//! client-go's defaults (5, burst 10), a negative one no limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// The header API Priority and Fairness sets on every answer it classifies.
const FLOW_SCHEMA_HEADER: &str = "X-Kubernetes-PF-FlowSchema-UID";

/// client-go's `rest.DefaultQPS` and `rest.DefaultBurst`, used for a QPS of 0.
const DEFAULT_QPS: f32 = 5.0;
const DEFAULT_BURST: i64 = 10;

/// The limit the flags ask for: `None` for none (a negative QPS); an error where client-go
/// refuses the configuration.
pub(crate) fn limit(qps: f32, burst: i64) -> Result<Option<Limit>, String> {
    if qps.is_nan() {
        return Err("--kube-api-qps must be a number".to_string());
    }
    if qps < 0.0 {
        return Ok(None);
    }
    let (qps, burst) = if qps == 0.0 {
        (DEFAULT_QPS, if burst == 0 { DEFAULT_BURST } else { burst })
    } else {
        (qps, burst)
    };
    if burst <= 0 {
        return Err(
            "--kube-api-burst must be greater than 0 when --kube-api-qps is greater than 0"
                .to_string(),
        );
    }
    Ok(Some(Limit {
        qps: f64::from(qps),
        burst: u32::try_from(burst).unwrap_or(u32::MAX),
    }))
}

/// Requests a second, and how many may go at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limit {
    pub(crate) qps: f64,
    pub(crate) burst: u32,
}

/// Whether the API server runs API Priority and Fairness, which makes client-side limits
/// redundant (fluxcd/cli-utils `flowcontrol.IsEnabled`). Any failure counts as no: the
/// flags' limits then apply.
pub(crate) async fn priority_and_fairness(client: &kube::Client) -> bool {
    let Ok(request) = http::Request::head("/livez/ping").body(kube::client::Body::empty()) else {
        return false;
    };
    match client.send(request).await {
        Ok(response) => response.headers().contains_key(FLOW_SCHEMA_HEADER),
        Err(error) => {
            tracing::debug!(%error, "cannot tell whether the API server runs priority and fairness");
            false
        }
    }
}

/// A token bucket as golang.org/x/time/rate's `Limiter.Wait`: a request takes a token,
/// waiting for it if the bucket is empty; tokens come back at `qps` a second up to `burst`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    limit: Limit,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens left; negative when requests already wait for tokens to come.
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(limit: Limit) -> Self {
        Self {
            limit,
            state: Mutex::new(Bucket {
                tokens: f64::from(limit.burst),
                at: Instant::now(),
            }),
        }
    }

    /// Takes a token: how long to wait before sending.
    fn take(&self) -> Duration {
        let mut bucket = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * self.limit.qps;
        bucket.tokens = (bucket.tokens + refilled).min(f64::from(self.limit.burst)) - 1.0;
        bucket.at = now;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.limit.qps)
        }
    }
}

/// Rate-limits the requests of a `kube::Client` with a [`TokenBucket`].
#[derive(Debug, Clone)]
pub(crate) struct RateLimitLayer {
    bucket: Arc<TokenBucket>,
}

impl RateLimitLayer {
    pub(crate) fn new(limit: Limit) -> Self {
        Self {
            bucket: Arc::new(TokenBucket::new(limit)),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            bucket: Arc::clone(&self.bucket),
            waiting: None,
            permitted: false,
        }
    }
}

/// The service of [`RateLimitLayer`]: ready once the next request's token is there.
pub(crate) struct RateLimited<S> {
    inner: S,
    bucket: Arc<TokenBucket>,
    waiting: Option<Pin<Box<Sleep>>>,
    permitted: bool,
}

impl<S, R> Service<R> for RateLimited<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.permitted {
            if self.waiting.is_none() {
                let wait = self.bucket.take();
                if !wait.is_zero() {
                    self.waiting = Some(Box::pin(tokio::time::sleep(wait)));
                }
            }
            if let Some(waiting) = self.waiting.as_mut() {
                ready!(waiting.as_mut().poll(cx));
                self.waiting = None;
            }
            self.permitted = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permitted = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    #[test]
    fn the_flags_mean_what_they_mean_to_client_go() {
        assert_eq!(
            limit(50.0, 300),
            Ok(Some(Limit {
                qps: 50.0,
                burst: 300
            }))
        );
        assert_eq!(limit(-1.0, 300), Ok(None));
        assert_eq!(
            limit(0.0, 0),
            Ok(Some(Limit {
                qps: 5.0,
                burst: 10
            }))
        );
        assert!(limit(10.0, 0).is_err());
        assert!(limit(f32::NAN, 10).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_requests_wait_their_turn() {
        let bucket = TokenBucket::new(Limit { qps: 2.0, burst: 3 });
        for _ in 0..3 {
            assert_eq!(bucket.take(), Duration::ZERO);
        }
        // Empty: the next waits half a second, the one after a second.
        assert_eq!(bucket.take(), Duration::from_millis(500));
        assert_eq!(bucket.take(), Duration::from_millis(1000));
        // A quiet spell refills, never past the burst.
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..3 {
            assert_eq!(bucket.take(), Duration::ZERO);
        }
        assert!(bucket.take() > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_service_holds_requests_until_their_token() {
        let layer = RateLimitLayer::new(Limit { qps: 1.0, burst: 1 });
        let mut service = layer.layer(tower::service_fn(
            |n: u32| async move { Ok::<_, Infallible>(n) },
        ));
        let started = Instant::now();
        assert_eq!(service.ready().await.unwrap().call(1).await, Ok(1));
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(service.ready().await.unwrap().call(2).await, Ok(2));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
