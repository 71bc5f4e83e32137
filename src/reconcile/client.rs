//! The HTTP client of the provider APIs (reqwest, rustls with the system's
//! roots): bearer token, bounded timeouts, and the providers' rate limits.
//! A 429 (Stripe, GitHub) or a GitHub 403 with `X-RateLimit-Remaining: 0`
//! or `Retry-After` is waited out and the request tried again; a response
//! that spends the last request of the window makes the next request wait
//! for `X-RateLimit-Reset`. Waits beyond [`MAX_WAIT`] end the run instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use reqwest::{Method, RequestBuilder, Response};

use super::ReconcileError;
use crate::config::Secret;
use crate::telemetry::names;

/// Longest rate-limit wait inside one run; a longer one ends the run, the next resumes.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Wait when a rate limit names no time (GitHub: "wait at least one minute").
const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// Most rate-limit waits within one request.
const MAX_RETRIES: u32 = 5;
/// Time for one request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one provider API for one source.
#[derive(Debug)]
pub(super) struct ApiClient {
    /// The reqwest client (connection pool).
    http: reqwest::Client,
    /// The API key or token.
    token: Secret,
    /// Extra headers of every request (GitHub's `Accept`, `X-GitHub-Api-Version`).
    headers: HeaderMap,
    /// The source, for metrics.
    source: String,
    /// When the provider allows the next request (after the window was spent).
    not_before: Mutex<Option<SystemTime>>,
}

impl ApiClient {
    /// A client sending `token` as a bearer token and `headers` with every request.
    pub(super) fn new(source: &str, token: Secret, headers: HeaderMap) -> Result<Self, ReconcileError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ReconcileError::Http(e.to_string()))?;
        Ok(Self {
            http,
            token,
            headers,
            source: source.to_owned(),
            not_before: Mutex::new(None),
        })
    }

    /// Sends `method url` (with `query`), waiting out rate limits; a non-2xx answer is an error.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(String, String)],
    ) -> Result<Response, ReconcileError> {
        for _ in 0..=MAX_RETRIES {
            self.wait_for_window().await;
            let response = self.request(method.clone(), url, query).send().await;
            let response = response.map_err(|e| ReconcileError::Http(without_url(e)))?;
            if let Some(wait) = rate_limit_wait(response.status(), response.headers(), SystemTime::now()) {
                metrics::counter!(names::RECONCILE_RATE_LIMITED, "source" => self.source.clone()).increment(1);
                if wait > MAX_WAIT {
                    return Err(ReconcileError::RateLimited(wait));
                }
                tracing::info!(source = %self.source, wait = ?wait, "provider rate limit: waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            self.note_window(response.headers());
            return check_status(response).await;
        }
        Err(ReconcileError::RateLimited(DEFAULT_WAIT))
    }

    fn request(&self, method: Method, url: &str, query: &[(String, String)]) -> RequestBuilder {
        let token = String::from_utf8_lossy(self.token.expose());
        self.http
            .request(method, url)
            .query(query)
            .headers(self.headers.clone())
            .bearer_auth(token)
    }

    /// Sleeps until the provider's window reopens, when the last response spent it.
    async fn wait_for_window(&self) {
        let until = self.not_before.lock().take();
        if let Some(wait) = until.and_then(|t| t.duration_since(SystemTime::now()).ok()) {
            tracing::info!(source = %self.source, wait = ?wait, "provider rate limit spent: waiting for its reset");
            tokio::time::sleep(wait.min(MAX_WAIT)).await;
        }
    }

    /// Remembers `X-RateLimit-Reset` when `X-RateLimit-Remaining` reached 0.
    fn note_window(&self, headers: &HeaderMap) {
        if number(headers, "x-ratelimit-remaining") == Some(0) {
            *self.not_before.lock() = number(headers, "x-ratelimit-reset").map(|s| UNIX_EPOCH + Duration::from_secs(s));
        }
    }
}

/// How long to wait before trying again, when `status` and `headers` say a rate limit was hit.
pub fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let spent = number(headers, "x-ratelimit-remaining") == Some(0);
    let retry_after = number(headers, "retry-after").map(Duration::from_secs);
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (spent || retry_after.is_some()));
    if !limited {
        return None;
    }
    let until_reset = number(headers, "x-ratelimit-reset").filter(|_| spent).map(|reset| {
        (UNIX_EPOCH + Duration::from_secs(reset))
            .duration_since(now)
            .unwrap_or_default()
    });
    Some(
        retry_after
            .or(until_reset)
            .unwrap_or(DEFAULT_WAIT)
            .max(Duration::from_secs(1)),
    )
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The response when 2xx; otherwise its status and the start of its body as an error.
async fn check_status(response: Response) -> Result<Response, ReconcileError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message: String = body.chars().take(300).collect();
    Err(ReconcileError::Status {
        status: status.as_u16(),
        message,
    })
}

/// A reqwest error without its URL (a URL may carry a cursor; never a secret, but keep logs short).
fn without_url(error: reqwest::Error) -> String {
    error.without_url().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|&(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn rate_limits_follow_the_documented_headers() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let wait = |status: u16, pairs: &[(&'static str, &str)]| {
            rate_limit_wait(StatusCode::from_u16(status).unwrap(), &headers(pairs), now)
        };
        assert_eq!(
            wait(200, &[("x-ratelimit-remaining", "0")]),
            None,
            "a success is not a limit"
        );
        assert_eq!(wait(403, &[]), None, "a plain 403 is a permission problem");
        assert_eq!(wait(429, &[("retry-after", "7")]), Some(Duration::from_secs(7)));
        assert_eq!(wait(429, &[]), Some(DEFAULT_WAIT));
        assert_eq!(
            wait(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1030")]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(wait(403, &[("retry-after", "2")]), Some(Duration::from_secs(2)));
        assert_eq!(
            wait(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]),
            Some(Duration::from_secs(1)),
            "a reset in the past still waits a second"
        );
    }
}
