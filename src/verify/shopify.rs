//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(secret, body)>`, no
//! prefix and no timestamp (replays are caught by deduplication on
//! `X-Shopify-Webhook-Id`).

use super::declarative::{HeaderScheme, Layout};
use super::ConfigProblem;
use crate::config::{HmacAlgorithm, SignatureEncoding, SourceConfig};

/// The Shopify scheme for a source's secrets.
pub(super) fn scheme(source: &SourceConfig) -> Result<HeaderScheme, ConfigProblem> {
    let layout = Layout {
        header: "x-shopify-hmac-sha256",
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Base64,
        prefix: "",
        signed: "{body}",
        timestamp_header: None,
        id_header: Some("x-shopify-webhook-id"),
        public_url: None,
    };
    HeaderScheme::build(&layout, source)
}

#[cfg(test)]
mod tests {
    use crate::config::Preset;
    use crate::verify::testing::{assert_garbage_rejected, at, headers, signed, verifier, NOW};
    use crate::verify::VerifyError;

    // Shopify publishes no test vector; this one was computed with Python's hmac and base64.
    const SECRET: &str = "shpss_test_secret";
    const BODY: &[u8] = br#"{"id":820982911946154508}"#;
    const SIGNATURE: &str = "AU5n5C4JV1EbE8g4yEzV+ZHbqkXpM29HXkzNAa5zicA=";

    #[test]
    fn an_independently_computed_signature_verifies() {
        let shopify = verifier(Preset::Shopify, &[SECRET]);
        let verified = shopify
            .verify(&headers(&[("X-Shopify-Hmac-Sha256", SIGNATURE)]), BODY, at(NOW))
            .unwrap();
        assert!(verified.verified);
        assert_eq!(shopify.scheme(), "shopify");
    }

    #[test]
    fn sign_then_verify_and_webhook_id() {
        let shopify = verifier(Preset::Shopify, &[SECRET]);
        let sent = signed(&shopify, BODY, at(NOW));
        assert_eq!(sent["x-shopify-hmac-sha256"], SIGNATURE);
        assert_eq!(sent["x-shopify-webhook-id"], "evt_1");
        assert!(shopify.verify(&sent, BODY, at(NOW)).is_ok());
    }

    #[test]
    fn tampered_body_wrong_secret_and_rotation() {
        let sent = headers(&[("x-shopify-hmac-sha256", SIGNATURE)]);
        let shopify = verifier(Preset::Shopify, &["rotated-in", SECRET]);
        assert_eq!(shopify.verify(&sent, BODY, at(NOW)).unwrap().secret_index, 1);
        assert_eq!(
            shopify.verify(&sent, b"{\"id\":820982911946154509}", at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
        let stranger = verifier(Preset::Shopify, &["shpss_other"]);
        assert_eq!(
            stranger.verify(&sent, BODY, at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn unpadded_base64_is_accepted_but_hex_is_malformed() {
        let shopify = verifier(Preset::Shopify, &[SECRET]);
        let unpadded = SIGNATURE.trim_end_matches('=');
        assert!(shopify
            .verify(&headers(&[("x-shopify-hmac-sha256", unpadded)]), BODY, at(NOW))
            .is_ok());
        let hex = "01".repeat(32);
        let sent = headers(&[("x-shopify-hmac-sha256", &hex)]);
        assert_eq!(
            shopify.verify(&sent, BODY, at(NOW)),
            Err(VerifyError::MalformedSignature)
        );
    }

    #[test]
    fn absent_and_malformed_headers() {
        let shopify = verifier(Preset::Shopify, &[SECRET]);
        assert_eq!(
            shopify.verify(&headers(&[]), BODY, at(NOW)),
            Err(VerifyError::MissingSignature)
        );
        let prefixed = format!("sha256={SIGNATURE}");
        let sent = headers(&[("x-shopify-hmac-sha256", &prefixed)]);
        assert_eq!(
            shopify.verify(&sent, BODY, at(NOW)),
            Err(VerifyError::MalformedSignature)
        );
        assert_garbage_rejected(&shopify, "x-shopify-hmac-sha256", BODY);
    }
}
