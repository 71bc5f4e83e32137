//! Request material shared by the benchmarks: JSON bodies of a given size
//! and a source configuration per verification preset.

use hookgate::config::{Config, SourceConfig};

/// A JSON object of about `size` bytes, shaped like a provider's payload.
pub(crate) fn json_body(size: usize, id: &str) -> Vec<u8> {
    let head = format!(r#"{{"id":"{id}","type":"push","repository":{{"full_name":"octo/hello"}},"padding":""#);
    let tail = "\"}";
    let pad = size.saturating_sub(head.len() + tail.len());
    let mut body = head.into_bytes();
    body.extend(std::iter::repeat_n(b'x', pad));
    body.extend_from_slice(tail.as_bytes());
    body
}

/// One source of each preset, all signed with the first secret. The `hmac`
/// source signs `{header:x-partner-timestamp}.{body}` like a typical partner.
pub(crate) const SOURCES: &str = r#"
[[sources]]
name = "github"
verify = "github"
secrets = ["github-secret-key-material"]

[[sources]]
name = "stripe"
verify = "stripe"
secrets = ["whsec_stripe-secret-key-material"]

[[sources]]
name = "shopify"
verify = "shopify"
secrets = ["shopify-secret-key-material"]

[[sources]]
name = "slack"
verify = "slack"
secrets = ["slack-signing-secret-material"]

[[sources]]
name = "standard-webhooks"
verify = "standard-webhooks"
secrets = ["whsec_c3VwZXItc2VjcmV0LWtleS1tYXRlcmlhbA=="]

[[sources]]
name = "hmac"
verify = "hmac"
secrets = ["partner-secret-key-material"]
dedup_key = "header:x-partner-delivery"
[sources.hmac]
header = "x-partner-signature"
algorithm = "sha256"
encoding = "hex"
prefix = "sha256="
signed = "{header:x-partner-timestamp}.{body}"
timestamp_header = "x-partner-timestamp"

[[sources]]
name = "none"
verify = "none"
"#;

/// The parsed sources of [`SOURCES`].
pub(crate) fn sources() -> Vec<SourceConfig> {
    Config::from_toml(SOURCES).expect("bench sources parse").sources
}
