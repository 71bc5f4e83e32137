//! `hookgate send`: builds a sample webhook for a configured source, signs it
//! with the source's first secret exactly as the provider would, POSTs it and
//! prints the answer. The test trigger for wiring a provider up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use http::{HeaderName, HeaderValue};

use crate::config::{Config, KeySpec, Preset, SourceConfig};
use crate::verify::Verifier;

/// Arguments of `hookgate send`.
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    /// Configuration file (TOML); without one, the built-in `demo` source.
    #[arg(long, short, env = "HOOKGATE_CONFIG")]
    config: Option<PathBuf>,
    /// The source to send as.
    #[arg(long, default_value = crate::config::DEMO_SOURCE)]
    source: String,
    /// Target URL; defaults to the configured ingest listener.
    #[arg(long)]
    url: Option<String>,
    /// Body to send instead of the preset's sample (a string).
    #[arg(long, conflicts_with = "body_file")]
    data: Option<String>,
    /// File whose bytes are sent as the body.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Delivery id (dedup key); a fresh UUID by default. Reuse one to see deduplication.
    #[arg(long)]
    delivery_id: Option<String>,
}

pub(super) fn run(args: SendArgs) -> ExitCode {
    match send(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn send(args: SendArgs) -> anyhow::Result<bool> {
    let config = Config::load(args.config.as_deref())?;
    let source = config
        .sources
        .iter()
        .find(|s| s.name == args.source)
        .ok_or_else(|| anyhow::anyhow!("no source named `{}` in the configuration", args.source))?;
    let verifier = Verifier::from_source(source).map_err(|p| anyhow::anyhow!("{}: {}", p.key, p.message))?;
    let delivery_id = args
        .delivery_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let body = match (&args.data, &args.body_file) {
        (Some(data), _) => data.clone().into_bytes(),
        (None, Some(path)) => std::fs::read(path)?,
        (None, None) => sample_body(source.verify, &delivery_id).into_bytes(),
    };
    let mut headers = provider_headers(source, &delivery_id);
    let signature = verifier
        .sign(&body, &delivery_id, SystemTime::now())
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    for (name, value) in signature {
        headers.retain(|(existing, _)| *existing != name);
        headers.push((name, value));
    }
    let url = args.url.clone().unwrap_or_else(|| default_url(&config, &source.name));
    post(&url, headers, body)
}

fn default_url(config: &Config, source: &str) -> String {
    let mut addr = config.ingest.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}/webhooks/{source}")
}

fn post(url: &str, headers: Vec<(HeaderName, HeaderValue)>, body: Vec<u8>) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let mut request = client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        println!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
        println!("{text}");
        Ok(status.is_success())
    })
}

/// Headers the provider sends besides the signature: event type and delivery id.
fn provider_headers(source: &SourceConfig, delivery_id: &str) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    let mut add = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.push((name, value));
        }
    };
    match source.verify {
        Preset::Github => add("x-github-event", "ping"),
        Preset::Shopify => add("x-shopify-topic", "orders/create"),
        _ => {}
    }
    if let KeySpec::Header(name) = source.dedup_key() {
        add(name.as_str(), delivery_id);
    }
    if let KeySpec::Header(name) = source.event_type() {
        if !matches!(source.verify, Preset::Github | Preset::Shopify) {
            add(name.as_str(), "hookgate.test");
        }
    }
    add("user-agent", concat!("hookgate-send/", env!("CARGO_PKG_VERSION")));
    headers
}

/// A small body in the shape the provider sends, carrying the delivery id where the preset looks for it.
fn sample_body(preset: Preset, delivery_id: &str) -> String {
    let body = match preset {
        Preset::Github => {
            serde_json::json!({"zen": "Keep it logically awesome.", "hook_id": 1, "hookgate_delivery": delivery_id})
        }
        Preset::Stripe => {
            serde_json::json!({"id": format!("evt_{delivery_id}"), "object": "event", "type": "hookgate.test", "data": {"object": {}}})
        }
        Preset::Slack => {
            serde_json::json!({"type": "event_callback", "event_id": delivery_id, "event": {"type": "app_mention", "text": "hello from hookgate send"}})
        }
        Preset::StandardWebhooks => {
            serde_json::json!({"type": "hookgate.test", "timestamp": chrono::Utc::now().to_rfc3339(), "data": {}})
        }
        _ => serde_json::json!({"id": delivery_id, "type": "hookgate.test", "message": "hello from hookgate send"}),
    };
    body.to_string()
}
