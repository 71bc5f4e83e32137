//! Small GitHub and Stripe API servers (axum on loopback) for the
//! reconciliation tests, following the providers' published REST APIs:
//! GitHub REST API 2022-11-28 (`GET /repos/{owner}/{repo}/hooks/{id}/deliveries`
//! with `per_page` and `cursor`, `Link` header pagination; `POST
//! .../deliveries/{delivery_id}/attempts` answering 202; rate limits as 403
//! with `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset`) and Stripe
//! (`GET /v1/events` with `created[gte]`, `limit`, `starting_after`, list
//! objects with `has_more`; 429 with `Retry-After`). Each "sends" its
//! webhooks as the provider does: a real signed POST to hookgate's ingest,
//! recording the status it got (0 when nothing answered).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use hookgate::config::{Preset, Secret, SourceConfig};
use hookgate::verify::Verifier;

/// The API token/key the fakes accept.
pub const API_TOKEN: &str = "test-api-token";

/// Serves `router` on a loopback port.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_TOKEN}"))
}

/// POSTs a signed webhook; the HTTP status, or 0 when the connection failed.
async fn send_webhook(url: &str, preset: Preset, secret: &str, body: &[u8], id: &str, extra: &[(&str, String)]) -> u16 {
    let source = SourceConfig::new("provider", preset, vec![Secret::from_bytes(secret.as_bytes().to_vec())]);
    let mut headers = Verifier::from_source(&source)
        .unwrap()
        .sign(body, id, SystemTime::now())
        .unwrap();
    headers.extend(extra.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// Rate-limit behaviour of a fake: which listing request is refused, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throttle {
    /// The 1-based listing request answered with a rate limit (0: none).
    pub at_request: usize,
    /// Seconds the answer asks to wait.
    pub wait_secs: u64,
}

/// One delivery attempt, as GitHub lists it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Attempt id.
    pub id: i64,
    /// Delivery guid (X-GitHub-Delivery).
    pub guid: String,
    /// When it was made.
    pub at: SystemTime,
    /// The status hookgate answered (0: no answer).
    pub status_code: u16,
    /// Whether it was a redelivery.
    pub redelivery: bool,
    /// X-GitHub-Event.
    pub event: String,
    /// The payload.
    pub body: Vec<u8>,
}

/// A fake GitHub with one repository hook.
#[derive(Clone)]
pub struct FakeGithub {
    /// Shared state.
    inner: Arc<Mutex<GithubState>>,
    /// Where the API listens.
    pub addr: SocketAddr,
}

/// The fake GitHub's state.
#[derive(Default)]
struct GithubState {
    /// Every attempt, oldest first.
    attempts: Vec<Attempt>,
    /// The hook's URL (hookgate's ingest).
    target: String,
    /// The hook's secret as GitHub has it.
    secret: String,
    /// Deliveries per page at most (GitHub: up to 100).
    page_size: usize,
    /// Listing requests seen.
    list_requests: usize,
    /// Redelivery requests per guid.
    redeliveries: HashMap<String, usize>,
    /// The rate limit to play.
    throttle: Throttle,
    /// Delay of each redelivery request.
    redelivery_delay: Duration,
}

/// The hook path the fake serves.
pub const GITHUB_HOOK: &str = "repos/octo/hello/hooks/42";

impl FakeGithub {
    /// A fake hook posting to `target`, signing with `secret`, listing `page_size` per page.
    pub async fn start(target: &str, secret: &str, page_size: usize) -> FakeGithub {
        let inner = Arc::new(Mutex::new(GithubState {
            target: target.into(),
            secret: secret.into(),
            page_size,
            ..Default::default()
        }));
        let router = Router::new()
            .route("/repos/{owner}/{repo}/hooks/{hook}/deliveries", get(github_list))
            .route(
                "/repos/{owner}/{repo}/hooks/{hook}/deliveries/{id}/attempts",
                post(github_redeliver),
            )
            .with_state(inner.clone());
        FakeGithub {
            addr: serve(router).await,
            inner,
        }
    }

    /// The API base URL.
    pub fn api(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the hook's URL.
    pub fn set_target(&self, target: &str) {
        self.inner.lock().unwrap().target = target.into();
    }

    /// Changes the hook's secret (a rotation).
    pub fn set_secret(&self, secret: &str) {
        self.inner.lock().unwrap().secret = secret.into();
    }

    /// Plays `throttle` on the listing requests.
    pub fn set_throttle(&self, throttle: Throttle) {
        self.inner.lock().unwrap().throttle = throttle;
    }

    /// Makes each redelivery request take `delay`.
    pub fn set_redelivery_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().redelivery_delay = delay;
    }

    /// Sends a new delivery `guid` of a push event; returns the status hookgate answered.
    pub async fn deliver(&self, guid: &str) -> u16 {
        let body = serde_json::to_vec(&json!({ "ref": "refs/heads/main", "after": guid, "hook_id": 42 })).unwrap();
        attempt(&self.inner, guid, "push", body, false).await
    }

    /// Every attempt so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.inner.lock().unwrap().attempts.clone()
    }

    /// Redelivery requests per guid.
    pub fn redeliveries(&self) -> HashMap<String, usize> {
        self.inner.lock().unwrap().redeliveries.clone()
    }

    /// Listing requests seen.
    pub fn list_requests(&self) -> usize {
        self.inner.lock().unwrap().list_requests
    }
}

/// Makes one delivery attempt and records it.
async fn attempt(inner: &Arc<Mutex<GithubState>>, guid: &str, event: &str, body: Vec<u8>, redelivery: bool) -> u16 {
    let (target, secret) = {
        let state = inner.lock().unwrap();
        (state.target.clone(), state.secret.clone())
    };
    let extra = [
        ("x-github-event", event.to_owned()),
        ("x-github-hook-id", "42".to_owned()),
    ];
    let status_code = send_webhook(&target, Preset::Github, &secret, &body, guid, &extra).await;
    let mut state = inner.lock().unwrap();
    let id = state.attempts.len() as i64 + 1_000;
    state.attempts.push(Attempt {
        id,
        guid: guid.into(),
        at: SystemTime::now(),
        status_code,
        redelivery,
        event: event.into(),
        body,
    });
    status_code
}

/// `GET .../deliveries?per_page=N&cursor=C`: newest first.
async fn github_list(
    State(inner): State<Arc<Mutex<GithubState>>>,
    Path((owner, repo, hook)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "message": "Bad credentials" }))).into_response();
    }
    let mut state = inner.lock().unwrap();
    state.list_requests += 1;
    if state.throttle.at_request == state.list_requests {
        let reset = UNIX_EPOCH.elapsed().unwrap().as_secs() + state.throttle.wait_secs;
        let headers = [
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset", reset.to_string()),
        ];
        return (
            StatusCode::FORBIDDEN,
            headers,
            Json(json!({ "message": "API rate limit exceeded" })),
        )
            .into_response();
    }
    let per_page = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30usize)
        .min(state.page_size);
    let start: usize = query
        .get("cursor")
        .and_then(|c| c.strip_prefix("v1_")?.parse().ok())
        .unwrap_or(0);
    let newest_first: Vec<&Attempt> = state.attempts.iter().rev().collect();
    let page: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(per_page)
        .map(|a| delivery_json(a))
        .collect();
    let mut response = Json(page).into_response();
    if start + per_page < newest_first.len() {
        let next = format!(
            "<http://{}/repos/{owner}/{repo}/hooks/{hook}/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
            headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default(),
            start + per_page
        );
        response.headers_mut().insert("link", next.parse().unwrap());
    }
    response
        .headers_mut()
        .insert("x-ratelimit-remaining", "4999".parse().unwrap());
    response
}

fn delivery_json(attempt: &Attempt) -> Value {
    let ok = (200..300).contains(&attempt.status_code);
    let status = match attempt.status_code {
        0 => "failed to connect".to_owned(),
        _ if ok => "OK".to_owned(),
        code => format!("Invalid HTTP Response: {code}"),
    };
    let delivered_at: chrono::DateTime<chrono::Utc> = attempt.at.into();
    json!({
        "id": attempt.id, "guid": attempt.guid, "delivered_at": delivered_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "redelivery": attempt.redelivery, "duration": 0.01, "status": status, "status_code": attempt.status_code,
        "event": attempt.event, "action": null, "installation_id": null, "repository_id": 1, "throttled_at": null,
    })
}

/// `POST .../deliveries/{id}/attempts`: 202, then a new attempt of the same delivery.
async fn github_redeliver(
    State(inner): State<Arc<Mutex<GithubState>>>,
    Path((_, _, _, id)): Path<(String, String, String, i64)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let (found, delay) = {
        let mut state = inner.lock().unwrap();
        let found = state.attempts.iter().find(|a| a.id == id).cloned();
        if let Some(attempt) = &found {
            *state.redeliveries.entry(attempt.guid.clone()).or_default() += 1;
        }
        (found, state.redelivery_delay)
    };
    let Some(original) = found else {
        return (StatusCode::NOT_FOUND, Json(json!({ "message": "Not Found" }))).into_response();
    };
    tokio::time::sleep(delay).await;
    let inner = inner.clone();
    tokio::spawn(async move { attempt(&inner, &original.guid, &original.event, original.body, true).await });
    (StatusCode::ACCEPTED, Json(json!({}))).into_response()
}

/// A fake Stripe account with one webhook endpoint.
#[derive(Clone)]
pub struct FakeStripe {
    /// Shared state.
    inner: Arc<Mutex<StripeState>>,
    /// Where the API listens.
    pub addr: SocketAddr,
}

/// The fake Stripe's state.
#[derive(Default)]
struct StripeState {
    /// Events, oldest first: (id, JSON).
    events: Vec<(String, Value)>,
    /// The endpoint's URL.
    target: String,
    /// The endpoint's signing secret.
    secret: String,
    /// Most events per page.
    page_size: usize,
    /// Listing requests seen.
    list_requests: usize,
    /// The rate limit to play.
    throttle: Throttle,
}

impl FakeStripe {
    /// A fake account whose endpoint posts to `target`, signing with `secret`.
    pub async fn start(target: &str, secret: &str, page_size: usize) -> FakeStripe {
        let inner = Arc::new(Mutex::new(StripeState {
            target: target.into(),
            secret: secret.into(),
            page_size,
            ..Default::default()
        }));
        let router = Router::new()
            .route("/v1/events", get(stripe_list))
            .with_state(inner.clone());
        FakeStripe {
            addr: serve(router).await,
            inner,
        }
    }

    /// The API base URL.
    pub fn api(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Plays `throttle` on the listing requests.
    pub fn set_throttle(&self, throttle: Throttle) {
        self.inner.lock().unwrap().throttle = throttle;
    }

    /// Creates event `id` and sends its webhook; returns the status hookgate answered.
    pub async fn create_event(&self, id: &str) -> u16 {
        let created = UNIX_EPOCH.elapsed().unwrap().as_secs();
        let event = json!({ "id": id, "object": "event", "api_version": "2024-06-20", "created": created,
            "type": "invoice.paid", "livemode": false, "pending_webhooks": 1,
            "data": { "object": { "id": format!("in_{id}"), "object": "invoice", "amount_paid": 1200 } } });
        let (target, secret) = {
            let mut state = self.inner.lock().unwrap();
            state.events.push((id.into(), event.clone()));
            (state.target.clone(), state.secret.clone())
        };
        let body = serde_json::to_vec(&event).unwrap();
        send_webhook(&target, Preset::Stripe, &secret, &body, id, &[]).await
    }

    /// Listing requests seen.
    pub fn list_requests(&self) -> usize {
        self.inner.lock().unwrap().list_requests
    }
}

/// `GET /v1/events?created[gte]=T&limit=N&starting_after=ID`: newest first.
async fn stripe_list(
    State(inner): State<Arc<Mutex<StripeState>>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        let error = json!({ "error": { "type": "invalid_request_error", "message": "Invalid API Key provided" } });
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut state = inner.lock().unwrap();
    state.list_requests += 1;
    if state.throttle.at_request == state.list_requests {
        let error = json!({ "error": { "type": "rate_limit_error", "message": "Too many requests" } });
        let retry = [("retry-after", state.throttle.wait_secs.to_string())];
        return (StatusCode::TOO_MANY_REQUESTS, retry, Json(error)).into_response();
    }
    let gte: u64 = param("created[gte]").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = param("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10usize)
        .min(state.page_size);
    let newest_first: Vec<&Value> = state
        .events
        .iter()
        .rev()
        .map(|(_, e)| e)
        .filter(|e| e["created"].as_u64() >= Some(gte))
        .collect();
    let start = match param("starting_after") {
        Some(after) => newest_first
            .iter()
            .position(|e| e["id"] == after.as_str())
            .map_or(newest_first.len(), |i| i + 1),
        None => 0,
    };
    let data: Vec<Value> = newest_first
        .iter()
        .skip(start)
        .take(limit)
        .map(|e| (*e).clone())
        .collect();
    let has_more = start + data.len() < newest_first.len();
    Json(json!({ "object": "list", "url": "/v1/events", "has_more": has_more, "data": data })).into_response()
}
