use http::{HeaderMap, Method};

use super::{has_port, port_twin, sorted_params};
use crate::config::{Preset, SourceConfig};
use crate::verify::testing::{assert_garbage_rejected, at, headers, source, NOW};
use crate::verify::{Checked, RequestHead, Verified, Verifier, VerifyError};

// The worked example of Twilio's security documentation and of its helper
// libraries' tests (twilio-python tests/unit/test_request_validator.py): auth
// token 12345, request URL https://mycompany.com/myapp.php?foo=1&bar=2.
const TOKEN: &str = "12345";
const PUBLIC_URL: &str = "https://mycompany.com/myapp.php";
const QUERY: &str = "foo=1&bar=2";
const FORM: &str = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
const SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

fn twilio_source(url: &str, tokens: &[&str]) -> SourceConfig {
    SourceConfig {
        public_url: Some(url.to_owned()),
        ..source(Preset::Twilio, tokens)
    }
}

fn twilio(tokens: &[&str]) -> Verifier {
    Verifier::from_source(&twilio_source(PUBLIC_URL, tokens)).unwrap()
}

fn check(verifier: &Verifier, query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Verified, VerifyError> {
    let head = RequestHead {
        method: &Method::POST,
        query,
        headers,
    };
    match verifier.check(head, body, at(NOW))? {
        Checked::Deliver(verified) => Ok(verified),
        Checked::Answer(reply) => panic!("Twilio has no handshake: {reply:?}"),
    }
}

fn signature(value: &str) -> HeaderMap {
    headers(&[("X-Twilio-Signature", value)])
}

#[test]
fn twilios_documented_example_verifies() {
    let verified = check(&twilio(&[TOKEN]), Some(QUERY), &signature(SIGNATURE), FORM.as_bytes());
    assert_eq!(
        verified,
        Ok(Verified {
            verified: true,
            secret_index: 0
        })
    );
}

#[test]
fn the_default_port_may_be_signed_or_not() {
    // twilio-python's vectors for the same request signed with :443 and, over http, with :80.
    let with_443 = signature("kvajT1Ptam85bY51eRf/AJRuM3w=");
    assert!(check(&twilio(&[TOKEN]), Some(QUERY), &with_443, FORM.as_bytes()).is_ok());
    let explicit = Verifier::from_source(&twilio_source("https://mycompany.com:443/myapp.php", &[TOKEN])).unwrap();
    assert!(check(&explicit, Some(QUERY), &signature(SIGNATURE), FORM.as_bytes()).is_ok());
    let http = Verifier::from_source(&twilio_source("http://mycompany.com/myapp.php", &[TOKEN])).unwrap();
    let with_80 = signature("0ZXoZLH/DfblKGATFgpif+LLRf4=");
    assert!(check(&http, Some(QUERY), &with_80, FORM.as_bytes()).is_ok());
}

#[test]
fn repeated_parameters_are_sorted_by_value() {
    // twilio-python's duplicate-parameter vector.
    let form = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
    let sent = signature("IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    assert!(check(&twilio(&[TOKEN]), Some(QUERY), &sent, form.as_bytes()).is_ok());
}

#[test]
fn a_json_body_is_covered_by_its_hash_in_the_url() {
    // twilio-python's body vector: the URL carries bodySHA256 and is signed alone.
    let body = br#"{"property": "value", "boolean": true}"#;
    let query = format!("{QUERY}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
    let sent = signature("a9nBmqA0ju/hNViExpshrM61xv4=");
    assert!(check(&twilio(&[TOKEN]), Some(&query), &sent, body).is_ok());
    assert_eq!(
        check(
            &twilio(&[TOKEN]),
            Some(&query),
            &sent,
            br#"{"property": "other", "boolean": true}"#
        ),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn tampering_wrong_token_url_or_query_fail() {
    let sent = signature(SIGNATURE);
    let refused = [
        (twilio(&[TOKEN]), Some(QUERY), FORM.replace("1234", "9999")),
        (twilio(&["54321"]), Some(QUERY), FORM.to_owned()),
        (twilio(&[TOKEN]), Some("foo=1&bar=3"), FORM.to_owned()),
        (twilio(&[TOKEN]), None, FORM.to_owned()),
        (
            Verifier::from_source(&twilio_source("https://mycompany.com/other.php", &[TOKEN])).unwrap(),
            Some(QUERY),
            FORM.to_owned(),
        ),
    ];
    for (verifier, query, body) in refused {
        assert_eq!(
            check(&verifier, query, &sent, body.as_bytes()),
            Err(VerifyError::InvalidSignature),
            "{query:?} {body}"
        );
    }
}

#[test]
fn rotation_reports_the_matching_token() {
    let rotating = twilio(&["new-token", TOKEN]);
    let verified = check(&rotating, Some(QUERY), &signature(SIGNATURE), FORM.as_bytes()).unwrap();
    assert_eq!(verified.secret_index, 1);
}

#[test]
fn sign_then_verify_and_the_headers_twilio_sends() {
    let verifier = twilio(&[TOKEN]);
    let sent: HeaderMap = verifier
        .sign(FORM.as_bytes(), "idem-1", at(NOW))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(sent["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(sent["i-twilio-idempotency-token"], "idem-1");
    assert!(check(&verifier, None, &sent, FORM.as_bytes()).is_ok());
    assert_eq!(
        verifier.verify(&sent, FORM.as_bytes(), at(NOW)).unwrap().secret_index,
        0
    );
}

#[test]
fn missing_and_malformed_signatures() {
    let verifier = twilio(&[TOKEN]);
    assert_eq!(
        check(&verifier, Some(QUERY), &HeaderMap::new(), FORM.as_bytes()),
        Err(VerifyError::MissingSignature)
    );
    for bad in ["", "not base64!", "c2hvcnQ=", &format!("{SIGNATURE}AAAA")] {
        assert_eq!(
            check(&verifier, Some(QUERY), &signature(bad), FORM.as_bytes()),
            Err(VerifyError::MalformedSignature),
            "{bad}"
        );
    }
    assert_garbage_rejected(&verifier, "x-twilio-signature", FORM.as_bytes());
}

#[test]
fn public_url_is_required_and_checked() {
    let missing = Verifier::from_source(&source(Preset::Twilio, &[TOKEN])).unwrap_err();
    assert_eq!(missing.key, "public_url");
    for bad in [
        "mycompany.com/myapp.php",
        "ftp://mycompany.com/x",
        "https://mycompany.com/x?foo=1",
        "https://mycompany.com/x#frag",
        "https://user:pw@mycompany.com/x",
        "/webhooks/twilio",
    ] {
        let problem = Verifier::from_source(&twilio_source(bad, &[TOKEN])).unwrap_err();
        assert_eq!(problem.key, "public_url", "{bad}");
        assert!(!problem.message.contains(TOKEN), "{bad}");
    }
    assert_eq!(
        Verifier::from_source(&twilio_source(PUBLIC_URL, &[])).unwrap_err().key,
        "secrets"
    );
}

#[test]
fn port_twins_toggle_only_the_default_port() {
    assert_eq!(
        port_twin("https://h.example/p").as_deref(),
        Some("https://h.example:443/p")
    );
    assert_eq!(
        port_twin("https://h.example:443/p").as_deref(),
        Some("https://h.example/p")
    );
    assert_eq!(port_twin("http://h.example").as_deref(), Some("http://h.example:80"));
    assert_eq!(port_twin("HTTP://h.example:80/").as_deref(), Some("HTTP://h.example/"));
    assert_eq!(port_twin("https://[::1]/p").as_deref(), Some("https://[::1]:443/p"));
    assert_eq!(port_twin("https://h.example:8443/p"), None);
    assert_eq!(port_twin("no-scheme"), None);
    assert!(has_port("h:1") && !has_port("[::1]") && !has_port("h:"));
}

#[test]
fn form_parameters_are_decoded_and_sorted() {
    let params = sorted_params(b"b=2&a=%2B1&a=0&c=x+y&empty=");
    let flat: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(flat, [("a", "+1"), ("a", "0"), ("b", "2"), ("c", "x y"), ("empty", "")]);
    assert!(sorted_params(b"").is_empty());
}
