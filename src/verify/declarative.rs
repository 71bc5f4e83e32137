//! Header-carried HMAC signatures: one header holds an optional prefix and a
//! hex or base64 MAC over a template of literal text, the body, other
//! headers, the public URL and the method, optionally with a signed
//! timestamp header. This is the `hmac` preset, and the engine behind the
//! `github`, `shopify`, `slack`, `zoom` and `meta` presets.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

use super::mac::{self, MacKey, Tag};
use super::request::RequestHead;
use super::template::Template;
use super::{problem, timestamp, ConfigProblem, SignError, Verified, VerifyError};
use crate::config::{HmacAlgorithm, KeySpec, SignatureEncoding, SourceConfig};

/// How a header-carried HMAC scheme looks on the wire.
pub(super) struct Layout<'a> {
    /// Header carrying the signature.
    pub(super) header: &'a str,
    /// Digest of the HMAC.
    pub(super) algorithm: HmacAlgorithm,
    /// Text encoding of the MAC.
    pub(super) encoding: SignatureEncoding,
    /// Text before the encoded MAC, e.g. `sha256=`.
    pub(super) prefix: &'a str,
    /// Template of the signed content.
    pub(super) signed: &'a str,
    /// Header with the signed Unix timestamp, if any.
    pub(super) timestamp_header: Option<&'a str>,
    /// Header in which a genuine sender puts its delivery id (only used by `sign`).
    pub(super) id_header: Option<&'a str>,
    /// What `{url}` in the template starts with: the source's `public_url`.
    pub(super) public_url: Option<&'a str>,
}

/// A ready-to-use header-carried HMAC scheme.
#[derive(Debug)]
pub(super) struct HeaderScheme {
    header: HeaderName,
    encoding: SignatureEncoding,
    prefix: Box<str>,
    template: Template,
    timestamp: Option<HeaderName>,
    id_header: Option<HeaderName>,
    tolerance: Duration,
    keys: Vec<MacKey>,
    tag_len: usize,
}

impl HeaderScheme {
    /// The `hmac` preset, described by the source's `[sources.hmac]` table.
    pub(super) fn declarative(source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let spec = source
            .hmac
            .as_ref()
            .ok_or_else(|| problem("hmac", "verify = \"hmac\" needs a [sources.hmac] table"))?;
        let layout = Layout {
            header: &spec.header,
            algorithm: spec.algorithm,
            encoding: spec.encoding,
            prefix: &spec.prefix,
            signed: &spec.signed,
            timestamp_header: spec.timestamp_header.as_deref(),
            id_header: None,
            public_url: super::public_url(source)?,
        };
        Self::build(&layout, source)
    }

    /// Checks a layout and precomputes one HMAC key per secret of `source`.
    pub(super) fn build(layout: &Layout<'_>, source: &SourceConfig) -> Result<Self, ConfigProblem> {
        let header = header_name(layout.header, "hmac.header")?;
        let timestamp = layout
            .timestamp_header
            .map(|name| header_name(name, "hmac.timestamp_header"))
            .transpose()?;
        let template =
            Template::parse(layout.signed, layout.public_url).map_err(|message| problem("hmac.signed", message))?;
        check_coverage(&header, timestamp.as_ref(), &template)?;
        if !layout.prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(problem("hmac.prefix", "must be printable ASCII without spaces"));
        }
        if timestamp.is_some() {
            super::check_tolerance(source)?;
        }
        let keys = super::mac_keys(source, layout.algorithm)?;
        Ok(Self {
            header,
            encoding: layout.encoding,
            prefix: layout.prefix.into(),
            template,
            timestamp,
            id_header: layout
                .id_header
                .map(|name| header_name(name, "hmac.header"))
                .transpose()?,
            tolerance: source.tolerance(),
            tag_len: mac::tag_len(layout.algorithm),
            keys,
        })
    }

    /// The HMAC key of each secret, in configuration order.
    pub(super) fn keys(&self) -> &[MacKey] {
        &self.keys
    }

    /// Checks the signature header of a request against every secret.
    pub(super) fn verify(&self, head: RequestHead<'_>, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let headers = head.headers;
        let value = headers.get(&self.header).ok_or(VerifyError::MissingSignature)?;
        let stamp = match &self.timestamp {
            Some(name) => Some(headers.get(name).ok_or(VerifyError::MissingTimestamp)?),
            None => None,
        };
        let candidate = self.decode(value.as_bytes())?;
        if let Some(stamp) = stamp {
            timestamp::check(timestamp::parse(stamp.as_bytes())?, now, self.tolerance)?;
        }
        // A signed header that is absent cannot have been signed by a genuine sender.
        if self.template.headers().any(|name| !headers.contains_key(name)) {
            return Err(VerifyError::MissingSignature);
        }
        mac::first_match(
            &self.keys,
            || self.template.chunks(head, body),
            std::slice::from_ref(&candidate),
        )
        .map(|secret_index| Verified {
            verified: true,
            secret_index,
        })
        .ok_or(VerifyError::InvalidSignature)
    }

    /// Whether the signed content fixes the value `spec` takes: a `json:` key
    /// comes from the body (always signed), a header key only when the
    /// template reads that header (every one of a list).
    pub(super) fn covers(&self, spec: &KeySpec) -> bool {
        let signed = |name: &HeaderName| self.template.headers().any(|read| read == name);
        match spec {
            KeySpec::None | KeySpec::Json(_) => true,
            KeySpec::Header(name) => signed(name),
            KeySpec::Headers(names) => names.iter().all(signed),
        }
    }

    /// The header carrying the signature.
    pub(super) fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The fingerprint of the request's signature when the scheme signs no
    /// timestamp, so that the same signature could be sent again at any time.
    pub(super) fn replayable(&self, headers: &HeaderMap) -> Option<[u8; 32]> {
        if self.timestamp.is_some() {
            return None;
        }
        let tag = self.decode(headers.get(&self.header)?.as_bytes()).ok()?;
        Some(mac::fingerprint(&tag))
    }

    fn decode(&self, value: &[u8]) -> Result<Tag, VerifyError> {
        let text = value
            .strip_prefix(self.prefix.as_bytes())
            .ok_or(VerifyError::MalformedSignature)?;
        Tag::decode(text, self.encoding, self.tag_len)
    }

    /// Headers a sender would add: the timestamp (from `now`), every other
    /// header the template reads and the id header (all set to the delivery
    /// id), then the signature made with the first secret, for a POST to the
    /// public URL without query string.
    pub(super) fn sign(
        &self,
        body: &[u8],
        delivery_id: &HeaderValue,
        now: SystemTime,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, SignError> {
        let key = self.keys.first().ok_or(SignError::NoSecret)?;
        let mut added = HeaderMap::new();
        if let Some(name) = &self.timestamp {
            added.insert(name.clone(), HeaderValue::from(timestamp::unix_seconds(now)));
        }
        for name in self.template.headers().chain(self.id_header.as_ref()) {
            added.entry(name).or_insert_with(|| delivery_id.clone());
        }
        let tag = key.tag(self.template.chunks(RequestHead::post(&added), body));
        let signature = mac::ascii_header(format!("{}{}", self.prefix, tag.encode(self.encoding)));
        let mut out: Vec<_> = added
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        out.push((self.header.clone(), signature));
        Ok(out)
    }
}

fn header_name(name: &str, key: &str) -> Result<HeaderName, ConfigProblem> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| problem(key, format!("`{name}` is not a valid header name")))
}

/// The signature may not sign itself, and a timestamp nobody signed protects nothing.
fn check_coverage(
    header: &HeaderName,
    timestamp: Option<&HeaderName>,
    template: &Template,
) -> Result<(), ConfigProblem> {
    if template.headers().any(|name| name == header) {
        return Err(problem(
            "hmac.signed",
            format!("reads the signature header `{header}` itself"),
        ));
    }
    if let Some(timestamp) = timestamp {
        if timestamp == header {
            return Err(problem("hmac.timestamp_header", "is the signature header"));
        }
        if !template.headers().any(|name| name == timestamp) {
            return Err(problem(
                "hmac.timestamp_header",
                format!(
                    "`{timestamp}` is not part of hmac.signed, so anyone could change it; add {{header:{timestamp}}}"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Preset};
    use crate::verify::testing::{at, headers, signed, NOW};
    use crate::verify::{Verifier, VerifyError};

    fn hmac_source(table: &str, secrets: &str) -> Result<Verifier, crate::verify::ConfigProblem> {
        let text =
            format!("[[sources]]\nname = \"x\"\nverify = \"hmac\"\nsecrets = {secrets}\n[sources.hmac]\n{table}\n");
        let config = Config::from_toml(&text).expect("parses");
        Verifier::from_source(&config.sources[0])
    }

    fn build(table: &str) -> Verifier {
        hmac_source(table, "[\"key\", \"second\"]").expect("valid")
    }

    const TIMED: &str = "header = \"x-sig\"\nsigned = \"{header:x-ts}.{body}\"\ntimestamp_header = \"x-ts\"\n";

    #[test]
    fn sha1_hex_with_prefix_matches_an_independent_vector() {
        let verifier = build("header = \"X-Sig\"\nalgorithm = \"sha1\"\nprefix = \"sha1=\"\nsigned = \"{header:x-ts}.{body}\"\ntimestamp_header = \"x-ts\"");
        assert_eq!(verifier.scheme(), "hmac");
        let sent = headers(&[
            ("x-sig", "sha1=752fe891e30f537c9bee8ee854c4421b67988bc6"),
            ("x-ts", "1700000000"),
        ]);
        let verified = verifier.verify(&sent, b"hello", at(NOW)).unwrap();
        assert!(verified.verified);
        assert_eq!(verified.secret_index, 0);
    }

    #[test]
    fn sha512_base64_matches_an_independent_vector() {
        let verifier =
            build("header = \"x-sig\"\nalgorithm = \"sha512\"\nencoding = \"base64\"\nsigned = \"1700000000.{body}\"");
        let sig = "h/4pPjRaVw9jaHpLANlxFyQSGJZ4I1DV9jTLWCVOrITqOpIO/HfEK/dptGmZ2bh9wwgYyCP6bs7NfMS2Zi1XUw==";
        assert!(verifier.verify(&headers(&[("x-sig", sig)]), b"hello", at(NOW)).is_ok());
        assert_eq!(
            verifier.verify(&headers(&[("x-sig", sig)]), b"hellO", at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
    }

    /// Square signs its notification URL followed by the body.
    fn square(public_url: &str) -> Result<Verifier, crate::verify::ConfigProblem> {
        let text = format!(
            "[[sources]]\nname = \"sq\"\nverify = \"hmac\"\nsecrets = [\"Ibxx_5AKakO-3qeNVR61Dw\"]\npublic_url = \"{public_url}\"\n\
             [sources.hmac]\nheader = \"x-square-hmacsha256-signature\"\nencoding = \"base64\"\nsigned = \"{{url}}{{body}}\"\n"
        );
        Verifier::from_source(&Config::from_toml(&text).expect("parses").sources[0])
    }

    #[test]
    fn url_templates_verify_squares_published_vector() {
        // The test vector of Square's SDKs (WebhooksHelper tests).
        let body = br#"{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}"#;
        let sent = headers(&[(
            "x-square-hmacsha256-signature",
            "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
        )]);
        let verifier = square("https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9").unwrap();
        assert!(verifier.verify(&sent, body, at(NOW)).is_ok());
        let moved = square("https://webhook.site/elsewhere").unwrap();
        assert_eq!(moved.verify(&sent, body, at(NOW)), Err(VerifyError::InvalidSignature));
        let parts = http::Request::post("/webhooks/sq?x=1").body(()).unwrap().into_parts().0;
        let mut with_query = parts;
        with_query.headers = sent;
        let head = crate::verify::RequestHead::of(&with_query);
        assert_eq!(
            verifier.check(head, body, at(NOW)),
            Err(VerifyError::InvalidSignature),
            "the query string received is part of {{url}}"
        );
        assert_eq!(square("webhook.site/no-scheme").unwrap_err().key, "public_url");
    }

    #[test]
    fn url_templates_need_a_public_url() {
        let problem = hmac_source("header = \"x-sig\"\nsigned = \"{url}{body}\"", "[\"k\"]").unwrap_err();
        assert_eq!(problem.key, "hmac.signed");
        assert!(problem.message.contains("public_url"), "{}", problem.message);
    }

    #[test]
    fn rotation_tampering_and_wrong_secret() {
        let verifier = build(TIMED);
        let second = hmac_source(TIMED, "[\"second\"]").unwrap();
        let sent = signed(&second, b"body", at(NOW));
        assert_eq!(verifier.verify(&sent, b"body", at(NOW)).unwrap().secret_index, 1);
        assert_eq!(
            verifier.verify(&sent, b"bodY", at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
        let stranger = hmac_source(TIMED, "[\"other\"]").unwrap();
        let sent = signed(&stranger, b"body", at(NOW));
        assert_eq!(
            verifier.verify(&sent, b"body", at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn timestamp_is_required_parsed_and_windowed() {
        let verifier = build(TIMED);
        let mut sent = signed(&verifier, b"b", at(NOW));
        assert!(verifier.verify(&sent, b"b", at(NOW + 300)).is_ok());
        assert_eq!(
            verifier.verify(&sent, b"b", at(NOW + 301)),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verifier.verify(&sent, b"b", at(NOW - 301)),
            Err(VerifyError::FutureTimestamp)
        );
        sent.insert("x-ts", "soon".parse().unwrap());
        assert_eq!(
            verifier.verify(&sent, b"b", at(NOW)),
            Err(VerifyError::MalformedTimestamp)
        );
        sent.remove("x-ts");
        assert_eq!(
            verifier.verify(&sent, b"b", at(NOW)),
            Err(VerifyError::MissingTimestamp)
        );
        sent.remove("x-sig");
        assert_eq!(
            verifier.verify(&sent, b"b", at(NOW)),
            Err(VerifyError::MissingSignature)
        );
    }

    #[test]
    fn changing_a_signed_header_fails_and_dropping_it_is_missing() {
        let verifier = build("header = \"x-sig\"\nsigned = \"{header:x-id}:{body}\"");
        let mut sent = signed(&verifier, b"b", at(NOW));
        assert_eq!(sent["x-id"], "evt_1");
        assert!(verifier.verify(&sent, b"b", at(NOW)).is_ok());
        sent.insert("x-id", "evt_2".parse().unwrap());
        assert_eq!(
            verifier.verify(&sent, b"b", at(NOW)),
            Err(VerifyError::InvalidSignature)
        );
        sent.remove("x-id");
        assert_eq!(
            verifier.verify(&sent, b"b", at(NOW)),
            Err(VerifyError::MissingSignature)
        );
    }

    #[test]
    fn malformed_signature_values_never_panic() {
        let verifier = build("header = \"x-sig\"\nprefix = \"sha256=\"");
        for value in [
            &b""[..],
            b"garbage",
            b"sha256=",
            b"sha256=zz",
            b"SHA256=00",
            b"sha256=\xff\xfe",
            b"sha256=\xc3\xa9",
        ] {
            let mut sent = headers(&[]);
            sent.insert("x-sig", http::HeaderValue::from_bytes(value).unwrap());
            assert_eq!(
                verifier.verify(&sent, b"b", at(NOW)),
                Err(VerifyError::MalformedSignature),
                "{value:?}"
            );
        }
    }

    #[test]
    fn configuration_problems_name_their_key() {
        for (table, key) in [
            ("header = \"x-sig\"\nsigned = \"{ts}.{body}\"", "hmac.signed"),
            ("header = \"x-sig\"\nsigned = \"{header:x-ts}\"", "hmac.signed"),
            ("header = \"x-sig\"\nsigned = \"{header:x-sig}{body}\"", "hmac.signed"),
            ("header = \"bad header\"", "hmac.header"),
            (
                "header = \"x-sig\"\ntimestamp_header = \"x-ts\"",
                "hmac.timestamp_header",
            ),
            (
                "header = \"x-sig\"\ntimestamp_header = \"x-sig\"",
                "hmac.timestamp_header",
            ),
            (
                "header = \"x-sig\"\ntimestamp_header = \"a b\"",
                "hmac.timestamp_header",
            ),
            ("header = \"x-sig\"\nprefix = \"é\"", "hmac.prefix"),
            ("header = \"x-sig\"\nprefix = \"sha256 =\"", "hmac.prefix"),
        ] {
            assert_eq!(hmac_source(table, "[\"k\"]").unwrap_err().key, key, "{table}");
        }
        assert_eq!(hmac_source("header = \"x-sig\"", "[]").unwrap_err().key, "secrets");
    }

    #[test]
    fn missing_table_and_zero_tolerance_are_problems() {
        let mut source = crate::verify::testing::source(Preset::Hmac, &["k"]);
        assert_eq!(Verifier::from_source(&source).unwrap_err().key, "hmac");
        let config = Config::from_toml(&format!(
            "[[sources]]\nname = \"x\"\nverify = \"hmac\"\nsecrets = [\"k\"]\ntolerance = \"0s\"\n[sources.hmac]\n{TIMED}"
        ))
        .unwrap();
        source = config.sources[0].clone();
        assert_eq!(Verifier::from_source(&source).unwrap_err().key, "tolerance");
    }
}
