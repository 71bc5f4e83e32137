//! `hookgate send`: builds a sample webhook for a configured source, signs it
//! with the source's first secret exactly as the provider would, POSTs it and
//! prints the answer. With `--handshake`, sends the provider's handshake
//! instead (Slack's url_verification, Zoom's endpoint.url_validation, Meta's
//! GET subscription) and checks the answer as the provider would. The test
//! trigger for wiring a provider up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Args;
use http::{HeaderName, HeaderValue, Method};

use crate::config::{Config, KeySpec, Preset, SourceConfig};
use crate::verify::{HandshakeSample, Verifier};

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
    /// Send the provider's handshake (slack, zoom, meta) and check the answer.
    #[arg(long, conflicts_with_all = ["data", "body_file"])]
    handshake: bool,
}

/// A request ready to go.
struct Outgoing {
    method: Method,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
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
    let url = args.url.clone().unwrap_or_else(|| default_url(&config, &source.name));
    let delivery_id = args
        .delivery_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if args.handshake {
        let sample = verifier
            .handshake_sample(&delivery_id, SystemTime::now())
            .ok_or_else(|| anyhow::anyhow!("verify = \"{}\" has no handshake", source.verify.as_str()))?
            .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
        return handshake(url, sample);
    }
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
    let (status, _) = post(Outgoing {
        method: Method::POST,
        url,
        headers,
        body,
    })?;
    Ok(status.is_success())
}

/// Sends a handshake and checks the answer as the provider would.
fn handshake(url: String, sample: HandshakeSample) -> anyhow::Result<bool> {
    let url = match &sample.query {
        Some(query) => format!("{url}{}{query}", if url.contains('?') { '&' } else { '?' }),
        None => url,
    };
    let outgoing = Outgoing {
        method: sample.method.clone(),
        url,
        headers: sample.headers.clone(),
        body: sample.body.clone(),
    };
    let (status, body) = post(outgoing)?;
    let accepted = status.is_success() && sample.accepts(&body);
    if accepted {
        println!("handshake answered as the provider expects");
    } else {
        println!(
            "handshake NOT answered as the provider expects: {}",
            String::from_utf8_lossy(&sample.expected.body)
        );
    }
    Ok(accepted)
}

fn default_url(config: &Config, source: &str) -> String {
    let mut addr = config.ingest.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}/webhooks/{source}")
}

/// Sends the request, prints the answer's status and body, and returns them.
fn post(outgoing: Outgoing) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let mut request = client.request(outgoing.method, &outgoing.url).body(outgoing.body);
        let typed = outgoing
            .headers
            .iter()
            .any(|(name, _)| name == http::header::CONTENT_TYPE);
        if !typed {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in outgoing.headers {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?.to_vec();
        println!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
        println!("{}", String::from_utf8_lossy(&body));
        Ok((status, body))
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
    let event = match source.verify {
        Preset::Github => Some("ping"),
        Preset::Shopify => Some("orders/create"),
        Preset::Gitlab => Some("Push Hook"),
        _ => None,
    };
    match source.dedup_key() {
        KeySpec::Header(name) => add(name.as_str(), delivery_id),
        KeySpec::Headers(names) => add(names[0].as_str(), delivery_id),
        KeySpec::Json(_) | KeySpec::None => {}
    }
    if let KeySpec::Header(name) = source.event_type() {
        add(name.as_str(), event.unwrap_or("hookgate.test"));
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
        Preset::Gitlab => {
            serde_json::json!({"object_kind": "push", "event_name": "push", "ref": "refs/heads/main", "checkout_sha": delivery_id})
        }
        Preset::Zoom => {
            serde_json::json!({"event": "meeting.started", "event_ts": chrono::Utc::now().timestamp_millis(), "payload": {"account_id": "hookgate", "object": {"uuid": delivery_id}}})
        }
        Preset::Meta => {
            serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": delivery_id, "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp"}}]}]})
        }
        // Twilio posts a form, not JSON.
        Preset::Twilio => {
            return form(&[
                ("AccountSid", "AC00000000000000000000000000000000"),
                ("Body", "hello from hookgate send"),
                ("From", "+15005550006"),
                ("MessageSid", &format!("SM{delivery_id}")),
                ("To", "+15005550001"),
            ])
        }
        _ => serde_json::json!({"id": delivery_id, "type": "hookgate.test", "message": "hello from hookgate send"}),
    };
    body.to_string()
}

/// `application/x-www-form-urlencoded` text of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn every_preset_has_a_sample_the_provider_would_send() {
        for preset in Preset::ALL {
            let body = sample_body(preset, "d-1");
            if preset == Preset::Twilio {
                assert!(
                    body.contains("From=%2B15005550006") && body.contains("MessageSid=SMd-1"),
                    "{body}"
                );
            } else {
                let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(json.is_object(), "{preset:?}");
            }
        }
    }

    #[test]
    fn provider_headers_carry_the_delivery_id_and_event_type() {
        let gitlab = SourceConfig::new("g", Preset::Gitlab, vec![Secret::from_bytes("t")]);
        let headers = provider_headers(&gitlab, "d-1");
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap())
        };
        assert_eq!(find("idempotency-key"), Some("d-1"));
        assert_eq!(find("x-gitlab-event"), Some("Push Hook"));
        assert!(find("user-agent").unwrap().starts_with("hookgate-send/"));
    }
}
