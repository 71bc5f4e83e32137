//! The CloudEvents Kafka protocol binding, binary content mode, for
//! `record_format = "cloudevents"`: the record value is the raw body and
//! the event's attributes travel as `ce_*` headers (`content-type` for
//! `datacontenttype`). hookgate's own facts travel as extension attributes,
//! named as CloudEvents requires (lower-case letters and digits): enough to
//! rebuild the history row (id, source, type, time, body, content type,
//! dedup key, verification, request line and client), not the request's
//! headers, which a CloudEvent does not carry.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Verification, WebhookEnvelope};

/// The CloudEvents version written.
pub const SPEC_VERSION: &str = "1.0";
/// `ce_source` is this prefix followed by the source name.
pub const SOURCE_PREFIX: &str = "hookgate/";
/// `ce_type` of an event whose type the source could not tell (CloudEvents requires a type).
pub const UNKNOWN_TYPE: &str = "hookgate.unknown";

/// Header names of the attributes, as the Kafka binding spells them.
pub mod header {
    /// `specversion`.
    pub const SPECVERSION: &str = "ce_specversion";
    /// `id`: the event id.
    pub const ID: &str = "ce_id";
    /// `source`: `hookgate/<source>`.
    pub const SOURCE: &str = "ce_source";
    /// `type`: the event type.
    pub const TYPE: &str = "ce_type";
    /// `time`: when hookgate received the request (RFC 3339, microseconds).
    pub const TIME: &str = "ce_time";
    /// `datacontenttype`: the request's Content-Type.
    pub const CONTENT_TYPE: &str = "content-type";
    /// Extension `hookgatededupkey`: the dedup key.
    pub const DEDUP_KEY: &str = "ce_hookgatededupkey";
    /// Extension `hookgateverified`: `true` or `false`.
    pub const VERIFIED: &str = "ce_hookgateverified";
    /// Extension `hookgatescheme`: the verification preset.
    pub const SCHEME: &str = "ce_hookgatescheme";
    /// Extension `hookgatesecretindex`: which configured secret matched.
    pub const SECRET_INDEX: &str = "ce_hookgatesecretindex";
    /// Extension `hookgatestatic`: `true` for a static credential (weaker than a signature).
    pub const STATIC: &str = "ce_hookgatestatic";
    /// Extension `hookgatemethod`: the HTTP method.
    pub const METHOD: &str = "ce_hookgatemethod";
    /// Extension `hookgatepath`: the request path.
    pub const PATH: &str = "ce_hookgatepath";
    /// Extension `hookgatequery`: the raw query string, when there was one.
    pub const QUERY: &str = "ce_hookgatequery";
    /// Extension `hookgateclientaddr`: the client address.
    pub const CLIENT_ADDR: &str = "ce_hookgateclientaddr";
    /// Extension `hookgatereplay`: `true` on records written by a replay.
    pub const REPLAY: &str = "ce_hookgatereplay";
    /// Extension `hookgaterecovered`: `true` on events the reconciler fetched from the provider's API.
    pub const RECOVERED: &str = "ce_hookgaterecovered";
}

/// Why a CloudEvents record could not be turned back into an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudEventError {
    /// A required attribute is absent.
    #[error("CloudEvent without `{0}`")]
    Missing(&'static str),
    /// An attribute holds what hookgate never writes there.
    #[error("CloudEvent attribute `{0}` is malformed")]
    Malformed(&'static str),
}

/// The record headers of `envelope` as a CloudEvent (the value is `envelope.body`).
pub fn headers(envelope: &WebhookEnvelope) -> Vec<(&'static str, String)> {
    let event_type = if envelope.event_type.is_empty() {
        UNKNOWN_TYPE
    } else {
        &envelope.event_type
    };
    let mut out = vec![
        (header::SPECVERSION, SPEC_VERSION.to_owned()),
        (header::ID, envelope.id.clone()),
        (header::SOURCE, format!("{SOURCE_PREFIX}{}", envelope.source)),
        (header::TYPE, event_type.to_owned()),
        (header::TIME, rfc3339(envelope.received_at_unix_micros)),
        (header::METHOD, envelope.method.clone()),
        (header::PATH, envelope.path.clone()),
        (header::CLIENT_ADDR, envelope.client_addr.clone()),
    ];
    let optional = [
        (header::CONTENT_TYPE, &envelope.content_type),
        (header::DEDUP_KEY, &envelope.dedup_key),
        (header::QUERY, &envelope.query),
    ];
    out.extend(
        optional
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.clone())),
    );
    if let Some(v) = &envelope.verification {
        out.push((header::VERIFIED, v.verified.to_string()));
        out.push((header::SCHEME, v.scheme.clone()));
        out.push((header::SECRET_INDEX, v.secret_index.to_string()));
        out.push((header::STATIC, v.static_credential.to_string()));
    }
    if envelope.replay {
        out.push((header::REPLAY, "true".to_owned()));
    }
    if envelope.recovered {
        out.push((header::RECOVERED, "true".to_owned()));
    }
    out
}

/// True when a record's headers mark it as a CloudEvent in binary mode.
pub fn is_cloudevent<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|name| name == header::SPECVERSION)
}

/// Rebuilds the envelope of a CloudEvents record from its headers
/// (`header(name)` gives a header's value) and value (the body).
pub fn to_envelope<'a>(
    header: impl Fn(&str) -> Option<&'a [u8]>,
    value: &[u8],
) -> Result<WebhookEnvelope, CloudEventError> {
    let text = |name: &'static str| -> Result<Option<String>, CloudEventError> {
        header(name)
            .map(|v| String::from_utf8(v.to_vec()).map_err(|_| CloudEventError::Malformed(name)))
            .transpose()
    };
    let required = |name: &'static str| text(name)?.ok_or(CloudEventError::Missing(name));
    if required(header::SPECVERSION)? != SPEC_VERSION {
        return Err(CloudEventError::Malformed(header::SPECVERSION));
    }
    let source = required(header::SOURCE)?;
    let source = source
        .strip_prefix(SOURCE_PREFIX)
        .ok_or(CloudEventError::Malformed(header::SOURCE))?;
    let event_type = required(header::TYPE)?;
    let time = required(header::TIME)?;
    let received = DateTime::parse_from_rfc3339(&time).map_err(|_| CloudEventError::Malformed(header::TIME))?;
    let flag = |name: &'static str| -> Result<bool, CloudEventError> {
        text(name)?.map_or(Ok(false), |v| v.parse().map_err(|_| CloudEventError::Malformed(name)))
    };
    let verification = match text(header::SCHEME)? {
        None => None,
        Some(scheme) => Some(Verification {
            scheme,
            verified: flag(header::VERIFIED)?,
            secret_index: text(header::SECRET_INDEX)?.map_or(Ok(0), |v| {
                v.parse().map_err(|_| CloudEventError::Malformed(header::SECRET_INDEX))
            })?,
            static_credential: flag(header::STATIC)?,
        }),
    };
    Ok(WebhookEnvelope {
        id: required(header::ID)?,
        source: source.to_owned(),
        event_type: if event_type == UNKNOWN_TYPE {
            String::new()
        } else {
            event_type
        },
        received_at_unix_micros: received.timestamp_micros(),
        method: required(header::METHOD)?,
        path: text(header::PATH)?.unwrap_or_default(),
        query: text(header::QUERY)?.unwrap_or_default(),
        headers: Vec::new(),
        content_type: text(header::CONTENT_TYPE)?.unwrap_or_default(),
        body: bytes::Bytes::copy_from_slice(value),
        dedup_key: text(header::DEDUP_KEY)?.unwrap_or_default(),
        verification,
        client_addr: required(header::CLIENT_ADDR)?,
        replay: flag(header::REPLAY)?,
        recovered: flag(header::RECOVERED)?,
        // The value of a CloudEvents record is the body itself, never a reference.
        body_ref: None,
    })
}

/// Microseconds since the epoch as RFC 3339 in UTC, e.g. `2026-12-03T18:00:00.123456Z`.
fn rfc3339(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> WebhookEnvelope {
        WebhookEnvelope {
            id: "0190a0a0-0000-7000-8000-000000000001".into(),
            source: "github".into(),
            event_type: "push".into(),
            received_at_unix_micros: 1_764_000_000_123_456,
            method: "POST".into(),
            path: "/webhooks/github".into(),
            query: "a=1".into(),
            content_type: "application/json".into(),
            body: bytes::Bytes::from_static(b"{\"x\":1}"),
            dedup_key: "d-1".into(),
            verification: Some(Verification {
                scheme: "github".into(),
                verified: true,
                secret_index: 1,
                static_credential: false,
            }),
            client_addr: "127.0.0.1".into(),
            ..Default::default()
        }
    }

    fn lookup<'a>(headers: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a [u8]> {
        move |name| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_bytes())
    }

    #[test]
    fn the_envelope_survives_the_trip_through_headers_except_request_headers() {
        let original = envelope();
        let headers = headers(&original);
        assert!(headers.contains(&(header::TIME, "2025-11-24T16:00:00.123456Z".to_owned())));
        assert!(headers.contains(&(header::SOURCE, "hookgate/github".to_owned())));
        let back = to_envelope(lookup(&headers), &original.body).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn an_unknown_type_and_a_replay_round_trip() {
        let mut original = envelope();
        original.event_type.clear();
        original.replay = true;
        original.recovered = true;
        original.verification = None;
        let headers = headers(&original);
        assert!(headers.contains(&(header::TYPE, UNKNOWN_TYPE.to_owned())));
        assert_eq!(to_envelope(lookup(&headers), &original.body).unwrap(), original);
    }

    #[test]
    fn missing_and_malformed_attributes_are_named() {
        let good = headers(&envelope());
        let without = |name: &str| good.iter().filter(|(k, _)| *k != name).cloned().collect::<Vec<_>>();
        let with = |name: &'static str, value: &str| {
            let mut h = without(name);
            h.push((name, value.to_owned()));
            h
        };
        let no_id = without(header::ID);
        assert_eq!(
            to_envelope(lookup(&no_id), b""),
            Err(CloudEventError::Missing(header::ID))
        );
        for (name, value) in [
            (header::SPECVERSION, "0.3"),
            (header::SOURCE, "elsewhere/github"),
            (header::TIME, "yesterday"),
            (header::VERIFIED, "yes"),
        ] {
            let h = with(name, value);
            assert_eq!(to_envelope(lookup(&h), b""), Err(CloudEventError::Malformed(name)));
        }
    }
}
