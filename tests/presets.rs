//! The presets gitlab, zoom, meta, twilio, basic and token against the real
//! binary and a real broker: each accepts its provider's request, refuses a
//! wrong signature or credential, a stale timestamp and a forged handshake,
//! and answers its handshake without publishing anything.

mod common;

use std::time::{Duration, SystemTime};

use common::gateway::config;
use common::webhook::{headers, post, signed, Headers};
use common::{error_code, unique, Broker, Gateway, Setup};
use hmac::Mac;
use hookgate::config::Secret;
use hookgate::verify::Verifier;
use reqwest::StatusCode;

const ZOOM_SECRET: &str = "zoom-secret-token";
const META_VERIFY_TOKEN: &str = "meatyhamhock";

/// One source of each new preset; Twilio signs Twilio's documented example URL.
const SOURCES: &str = r#"
[[sources]]
name = "gitlab"
verify = "gitlab"
secrets = ["old-gitlab-token", "gitlab-token"]
[[sources]]
name = "zoom"
verify = "zoom"
secrets = ["zoom-secret-token"]
[[sources]]
name = "meta"
verify = "meta"
secrets = ["meta-app-secret"]
verify_token = "meatyhamhock"
[[sources]]
name = "twilio"
verify = "twilio"
secrets = ["12345"]
public_url = "https://mycompany.com/myapp.php"
[[sources]]
name = "basic"
verify = "basic"
secrets = ["Aladdin:open sesame"]
[[sources]]
name = "token"
verify = "token"
secrets = ["t0k3n"]
token_header = "authorization"
token_prefix = "Bearer "
[[sources]]
name = "github"
verify = "github"
secrets = ["k"]
"#;

fn setup() -> Setup {
    Setup::start(Broker::any(), 3, "ingest", &[], |bootstrap, topic| {
        config(bootstrap, topic, "", SOURCES)
    })
}

/// What a sender holding `secret` (right or wrong) sends for the gateway's source `source`.
fn signed_with(gateway: &Gateway, source: &str, secret: &str, body: &[u8]) -> Headers {
    let mut signer = gateway.source(source);
    signer.secrets = vec![Secret::from_bytes(secret)];
    Verifier::from_source(&signer)
        .unwrap()
        .sign(body, &unique("d"), SystemTime::now())
        .unwrap()
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}

/// (source, body, extra headers, expected event type, a static credential).
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    bool,
);

const CASES: [Case; 6] = [
    (
        "gitlab",
        r#"{"object_kind":"push"}"#,
        &[("x-gitlab-event", "Push Hook")],
        "Push Hook",
        true,
    ),
    (
        "zoom",
        r#"{"event":"meeting.started","payload":{}}"#,
        &[],
        "meeting.started",
        false,
    ),
    ("meta", r#"{"object":"page","entry":[]}"#, &[], "page", false),
    ("twilio", "From=%2B15005550006&Body=hi", &[], "", false),
    ("basic", r#"{"n":1}"#, &[], "", true),
    ("token", r#"{"n":2}"#, &[], "", true),
];

#[tokio::test]
async fn every_new_preset_accepts_its_provider_and_refuses_a_wrong_secret() {
    let s = setup();
    let gitlab_delivery = unique("gitlab");
    for (source, body, extra, _, _) in CASES {
        let url = s.gateway.url(&format!("/webhooks/{source}"));
        let mut sent = signed(&s.gateway, source, body.as_bytes(), &gitlab_delivery, SystemTime::now());
        sent.extend(headers(extra));
        let response = post(&url, body.as_bytes(), &sent).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{source}: {}",
            response.text().await.unwrap()
        );
        let wrong = if source == "basic" {
            "Aladdin:open sesamE"
        } else {
            "not-the-secret"
        };
        let forged = signed_with(&s.gateway, source, wrong, body.as_bytes());
        let response = post(&url, body.as_bytes(), &forged).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{source}");
        let code = json(response).await["error"]["code"].as_str().unwrap().to_owned();
        assert!(
            ["invalid_signature", "invalid_credential"].contains(&code.as_str()),
            "{source}: {code}"
        );
    }
    let records = s.records(CASES.len(), Duration::from_secs(20));
    assert_eq!(records.len(), CASES.len());
    for (source, body, _, event_type, static_credential) in CASES {
        let envelope = &records.iter().find(|r| r.envelope.source == source).unwrap().envelope;
        assert_eq!(envelope.body.as_ref(), body.as_bytes(), "{source}");
        assert_eq!(envelope.event_type, event_type, "{source}");
        let verification = envelope.verification.as_ref().unwrap();
        assert_eq!(verification.scheme, source);
        assert!(verification.verified, "{source}");
        assert_eq!(verification.static_credential, static_credential, "{source}");
    }
    // The static credentials never reach Kafka.
    let gitlab = &records.iter().find(|r| r.envelope.source == "gitlab").unwrap().envelope;
    assert_eq!(gitlab.header("x-gitlab-token"), Some(&b"[redacted]"[..]));
    assert_eq!(
        gitlab.dedup_key, gitlab_delivery,
        "Idempotency-Key is GitLab's delivery id"
    );
    let token = &records.iter().find(|r| r.envelope.source == "token").unwrap().envelope;
    assert_eq!(token.header("authorization"), Some(&b"[redacted]"[..]));
}

#[tokio::test]
async fn a_static_credential_signs_nothing_but_a_signature_covers_the_body() {
    let s = setup();
    let sent = signed(&s.gateway, "gitlab", b"{}", "d-1", SystemTime::now());
    let other_body = post(&s.gateway.url("/webhooks/gitlab"), b"{\"changed\":true}", &sent).await;
    assert_eq!(
        other_body.status(),
        StatusCode::ACCEPTED,
        "a token is not bound to the body"
    );
    let missing = post(&s.gateway.url("/webhooks/gitlab"), b"{}", &[]).await;
    assert_eq!(error_code(&json(missing).await), "missing_credential");
    let sent = signed(&s.gateway, "meta", b"{}", "d-2", SystemTime::now());
    let tampered = post(&s.gateway.url("/webhooks/meta"), b"{\"changed\":true}", &sent).await;
    assert_eq!(error_code(&json(tampered).await), "invalid_signature");
}

#[tokio::test]
async fn stale_and_future_zoom_timestamps_are_refused() {
    let s = setup();
    let body = br#"{"event":"meeting.ended","payload":{}}"#;
    let url = s.gateway.url("/webhooks/zoom");
    for (moment, code) in [
        (SystemTime::now() - Duration::from_secs(3600), "stale_timestamp"),
        (SystemTime::now() + Duration::from_secs(3600), "future_timestamp"),
    ] {
        let response = post(&url, body, &signed(&s.gateway, "zoom", body, "d", moment)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&json(response).await), code);
    }
}

#[tokio::test]
async fn zoom_url_validation_is_answered_once_verified_and_never_published() {
    let s = setup();
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let url = s.gateway.url("/webhooks/zoom");
    let response = post(&url, body, &signed(&s.gateway, "zoom", body, "d", SystemTime::now())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(ZOOM_SECRET.as_bytes()).unwrap();
    mac.update(b"qgg8vlvZRS6UYooatFL8Aw");
    let expected = const_hex::encode(mac.finalize().into_bytes());
    assert_eq!(
        json(response).await,
        serde_json::json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected})
    );
    // Signed with another secret: refused, and no encryptedToken is handed out.
    let forged = post(&url, body, &signed_with(&s.gateway, "zoom", "guess", body)).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let text = forged.text().await.unwrap();
    assert!(
        !text.contains(&expected) && text.contains("invalid_signature"),
        "{text}"
    );
    assert!(s.records(0, Duration::from_secs(3)).is_empty());
}

#[tokio::test]
async fn meta_subscription_is_a_get_answered_with_the_challenge() {
    let s = setup();
    let client = reqwest::Client::new();
    let get = |query: String| client.get(s.gateway.url(&format!("/webhooks/meta?{query}"))).send();
    let good = format!("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={META_VERIFY_TOKEN}");
    let response = get(good).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "1158201444");
    for (query, code) in [
        (
            "hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess",
            "invalid_credential",
        ),
        ("hub.mode=subscribe&hub.challenge=1", "missing_credential"),
        ("hub.challenge=1&hub.verify_token=meatyhamhock", "malformed_handshake"),
        ("", "malformed_handshake"),
    ] {
        let response = get(query.to_owned()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{query}");
        let text = response.text().await.unwrap();
        assert!(text.contains(code) && !text.contains("meatyhamhock"), "{query}: {text}");
    }
    // Other sources still take POST only.
    let response = get("x=1".into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "meta answers GET");
    let github = client.get(s.gateway.url("/webhooks/github")).send().await.unwrap();
    assert_eq!(github.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(s.records(0, Duration::from_secs(3)).is_empty());
    let metrics = s.gateway.metrics().await;
    assert!(
        metrics.contains(r#"hookgate_verify_failures_total{source="meta",reason="invalid_credential"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn twilios_documented_request_verifies_through_the_public_url_and_query() {
    let s = setup();
    // Twilio's worked example: token 12345, https://mycompany.com/myapp.php?foo=1&bar=2.
    let form = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
    let sent = headers(&[
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("i-twilio-idempotency-token", "idem-1"),
    ]);
    let url = s.gateway.url("/webhooks/twilio?foo=1&bar=2");
    let first = post(&url, form.as_bytes(), &sent).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let id = json(first).await["id"].clone();
    let again = post(&url, form.as_bytes(), &sent).await;
    assert_eq!(again.status(), StatusCode::OK, "Twilio's retry is a duplicate");
    assert_eq!(json(again).await["id"], id);
    let no_query = post(&s.gateway.url("/webhooks/twilio"), form.as_bytes(), &sent).await;
    assert_eq!(error_code(&json(no_query).await), "invalid_signature");
    let records = s.records(1, Duration::from_secs(10));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].envelope.query, "foo=1&bar=2");
    assert_eq!(records[0].envelope.dedup_key, "idem-1");
}

#[tokio::test]
async fn basic_auth_challenges_a_sender_that_sent_no_credentials() {
    let s = setup();
    let url = s.gateway.url("/webhooks/basic");
    let bare = post(&url, b"{}", &[]).await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Basic realm=\"hookgate\", charset=\"UTF-8\""
    );
    assert_eq!(error_code(&json(bare).await), "missing_credential");
    // RFC 7617's example credentials.
    let sent = headers(&[("authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")]);
    assert_eq!(post(&url, b"{}", &sent).await.status(), StatusCode::ACCEPTED);
    let signature = post(&s.gateway.url("/webhooks/github"), b"{}", &[]).await;
    assert!(signature.headers().get("www-authenticate").is_none());
}
