//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`, no
//! timestamp (GitHub signs none; replays are caught by deduplication on
//! `X-GitHub-Delivery`).

use super::declarative::{HeaderScheme, Layout};
use super::ConfigProblem;
use crate::config::{HmacAlgorithm, SignatureEncoding, SourceConfig};

/// The GitHub scheme for a source's secrets.
pub(super) fn scheme(source: &SourceConfig) -> Result<HeaderScheme, ConfigProblem> {
    HeaderScheme::build(&hub_signature_layout(Some("x-github-delivery")), source)
}

/// `X-Hub-Signature-256` over the body, as GitHub signs and Meta signs too;
/// `id_header` names the sender's delivery id header, if it sends one.
pub(super) fn hub_signature_layout(id_header: Option<&'static str>) -> Layout<'static> {
    Layout {
        header: "x-hub-signature-256",
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Hex,
        prefix: "sha256=",
        signed: "{body}",
        timestamp_header: None,
        id_header,
        public_url: None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Preset;
    use crate::verify::testing::{assert_garbage_rejected, at, headers, signed, verifier, NOW};
    use crate::verify::{Verified, VerifyError};

    const DOC_SECRET: &str = "It's a Secret to Everybody";
    const DOC_SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_documented_test_vector_verifies() {
        let github = verifier(Preset::Github, &[DOC_SECRET]);
        let sent = headers(&[("X-Hub-Signature-256", DOC_SIGNATURE)]);
        assert_eq!(
            github.verify(&sent, b"Hello, World!", at(NOW)),
            Ok(Verified {
                verified: true,
                secret_index: 0
            })
        );
        assert_eq!(github.scheme(), "github");
    }

    #[test]
    fn signing_reproduces_the_documented_signature_and_delivery_header() {
        let github = verifier(Preset::Github, &[DOC_SECRET]);
        let sent = signed(&github, b"Hello, World!", at(NOW));
        assert_eq!(sent["x-hub-signature-256"], DOC_SIGNATURE);
        assert_eq!(sent["x-github-delivery"], "evt_1");
    }

    #[test]
    fn upper_case_hex_is_accepted() {
        let github = verifier(Preset::Github, &[DOC_SECRET]);
        let upper = format!("sha256={}", DOC_SIGNATURE["sha256=".len()..].to_uppercase());
        assert!(github
            .verify(&headers(&[("x-hub-signature-256", &upper)]), b"Hello, World!", at(NOW))
            .is_ok());
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let github = verifier(Preset::Github, &[DOC_SECRET]);
        let sent = headers(&[("x-hub-signature-256", DOC_SIGNATURE)]);
        assert_eq!(
            github.verify(&sent, b"Hello, World?", at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(github.verify(&sent, b"", at(NOW)), Err(VerifyError::InvalidSignature));
        let other = verifier(Preset::Github, &["not it"]);
        assert_eq!(
            other.verify(&sent, b"Hello, World!", at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn second_secret_is_accepted_while_rotating() {
        let github = verifier(Preset::Github, &["new secret", DOC_SECRET, "third"]);
        let sent = headers(&[("x-hub-signature-256", DOC_SIGNATURE)]);
        assert_eq!(github.verify(&sent, b"Hello, World!", at(NOW)).unwrap().secret_index, 1);
    }

    #[test]
    fn no_timestamp_means_any_time_is_fine() {
        let github = verifier(Preset::Github, &[DOC_SECRET]);
        let sent = headers(&[("x-hub-signature-256", DOC_SIGNATURE)]);
        assert!(github.verify(&sent, b"Hello, World!", at(0)).is_ok());
    }

    #[test]
    fn absent_and_malformed_headers_are_told_apart() {
        let github = verifier(Preset::Github, &[DOC_SECRET]);
        assert_eq!(
            github.verify(&headers(&[]), b"x", at(NOW)),
            Err(VerifyError::MissingSignature)
        );
        // The legacy SHA-1 header alone is not enough.
        let legacy = headers(&[("x-hub-signature", "sha1=0000000000000000000000000000000000000000")]);
        assert_eq!(
            github.verify(&legacy, b"x", at(NOW)),
            Err(VerifyError::MissingSignature)
        );
        let wrong_prefix = format!("sha1={}", &DOC_SIGNATURE[7..]);
        let sent = headers(&[("x-hub-signature-256", &wrong_prefix)]);
        assert_eq!(
            github.verify(&sent, b"Hello, World!", at(NOW)),
            Err(VerifyError::MalformedSignature)
        );
        assert_garbage_rejected(&github, "x-hub-signature-256", b"Hello, World!");
    }
}
