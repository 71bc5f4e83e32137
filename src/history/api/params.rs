//! Query-string parsing for the list and stream routes: every parameter is
//! checked, a bad value is a 400 `invalid_filter` that names it, and a
//! parameter the route does not take is a 400 `unknown_parameter` (so a
//! typo never silently widens a query).

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::Uri;
use chrono::DateTime;

use super::auth::Grant;
use super::error::ApiError;
use crate::history::store::{EventFilter, JsonMatch, JsonPointer, MAX_TEXT_LEN};

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest `limit`.
pub const MAX_LIMIT: u32 = 1000;

/// Parameters every filtered route takes.
const FILTER_PARAMETERS: [&str; 6] = ["source", "type", "since", "until", "dedup_key", "verified"];
/// Filters that look inside bodies (list, export, bulk replay; not the live tail).
const SEARCH_PARAMETERS: [&str; 2] = ["json", "q"];
/// Parameters only the list route takes.
const PAGE_PARAMETERS: [&str; 2] = ["limit", "cursor"];
/// Most `json` filters in one query.
pub(crate) const MAX_JSON_FILTERS: usize = 8;

/// Filters as requested, before the token's source restriction applies.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestedFilter {
    /// `source`.
    source: Option<String>,
    /// Everything else, already in store form (`sources` unset).
    rest: EventFilter,
}

impl RequestedFilter {
    /// The store filter for a token: 403 when the requested source is not
    /// the token's; a restricted token without `source` sees its sources only.
    pub(crate) fn resolve(self, grant: &Grant) -> Result<EventFilter, ApiError> {
        let sources = grant.visible_sources(self.source.as_deref())?;
        Ok(EventFilter { sources, ..self.rest })
    }
}

/// A parsed `GET /v1/events` query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ListRequest {
    /// The filters.
    pub(crate) filter: RequestedFilter,
    /// Page size.
    pub(crate) limit: u32,
    /// `cursor`, not yet decoded (decoding needs the resolved filter).
    pub(crate) cursor: Option<String>,
}

/// Parses the list route's query.
pub(crate) fn parse_list(uri: &Uri) -> Result<ListRequest, ApiError> {
    let allowed: Vec<&str> = FILTER_PARAMETERS
        .iter()
        .chain(SEARCH_PARAMETERS.iter())
        .chain(PAGE_PARAMETERS.iter())
        .copied()
        .collect();
    let mut params = collect(uri, &allowed)?;
    let limit = match params.remove("limit").and_then(|mut l| l.pop()) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| invalid("limit", &format!("must be an integer from 1 to {MAX_LIMIT}")))?,
    };
    let cursor = params
        .remove("cursor")
        .and_then(|mut c| c.pop())
        .map(|c| non_empty("cursor", c))
        .transpose()?;
    Ok(ListRequest {
        filter: filter(params)?,
        limit,
        cursor,
    })
}

/// A parsed `GET /v1/events/stream` query.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StreamRequest {
    /// The filters (no body search: the live feed carries summaries).
    pub(crate) filter: RequestedFilter,
    /// `include=body`: each event carries its body.
    pub(crate) include_body: bool,
}

/// Parses the stream route's query.
pub(crate) fn parse_stream(uri: &Uri) -> Result<StreamRequest, ApiError> {
    let allowed: Vec<&str> = FILTER_PARAMETERS.iter().chain(["include"].iter()).copied().collect();
    let mut params = collect(uri, &allowed)?;
    let include_body = match params.remove("include").and_then(|mut v| v.pop()).as_deref() {
        None => false,
        Some("body") => true,
        Some(_) => return Err(invalid("include", "must be `body`")),
    };
    Ok(StreamRequest {
        filter: filter(params)?,
        include_body,
    })
}

/// Parses a query holding at most `since` (RFC 3339).
pub(crate) fn parse_since(uri: &Uri) -> Result<Option<i64>, ApiError> {
    let mut params = collect(uri, &["since"])?;
    params
        .remove("since")
        .and_then(|mut v| v.pop())
        .map(|v| time("since", &v))
        .transpose()
}

/// Parses the export route's query: every filter, no page parameters.
pub(crate) fn parse_export(uri: &Uri) -> Result<RequestedFilter, ApiError> {
    let allowed: Vec<&str> = FILTER_PARAMETERS
        .iter()
        .chain(SEARCH_PARAMETERS.iter())
        .copied()
        .collect();
    filter(collect(uri, &allowed)?)
}

/// Parses filters given as JSON-ish pairs (the bulk replay's request body).
pub(crate) fn parse_pairs(pairs: Vec<(String, String)>) -> Result<RequestedFilter, ApiError> {
    let allowed: Vec<&str> = FILTER_PARAMETERS
        .iter()
        .chain(SEARCH_PARAMETERS.iter())
        .copied()
        .collect();
    filter(check(pairs, &allowed)?)
}

fn invalid(name: &str, problem: &str) -> ApiError {
    ApiError::InvalidFilter(format!("`{name}` {problem}"))
}

/// The parameters by name, each allowed; `json` may repeat, the others not.
type Params = HashMap<String, Vec<String>>;

fn collect(uri: &Uri, allowed: &[&str]) -> Result<Params, ApiError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| ApiError::InvalidFilter("the query string is malformed".into()))?;
    check(pairs, allowed)
}

fn check(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, ApiError> {
    let mut params: Params = HashMap::new();
    for (name, value) in pairs {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::UnknownParameter(name));
        }
        let values = params.entry(name.clone()).or_default();
        if !values.is_empty() && name != "json" {
            return Err(invalid(&name, "is given more than once"));
        }
        values.push(value);
    }
    Ok(params)
}

/// One `json=<pointer>:<value>`: the pointer ends at the first `:`.
fn json_match(text: &str) -> Result<JsonMatch, ApiError> {
    let (pointer, value) = text
        .split_once(':')
        .ok_or_else(|| invalid("json", "must be <pointer>:<value>, e.g. /data/object/customer:cus_123"))?;
    let pointer = JsonPointer::parse(pointer).map_err(|e| invalid("json", &format!("pointer `{pointer}` {e}")))?;
    Ok(JsonMatch {
        pointer,
        value: value.to_owned(),
    })
}

/// `q`: some word characters, at most `MAX_TEXT_LEN` bytes.
fn text_search(text: String) -> Result<String, ApiError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(invalid("q", &format!("is longer than {MAX_TEXT_LEN} bytes")));
    }
    if !text.chars().any(char::is_alphanumeric) {
        return Err(invalid("q", "must contain a word (letters or digits)"));
    }
    Ok(text)
}

fn filter(mut params: Params) -> Result<RequestedFilter, ApiError> {
    let json = params.remove("json").unwrap_or_default();
    if json.len() > MAX_JSON_FILTERS {
        return Err(invalid("json", &format!("is given more than {MAX_JSON_FILTERS} times")));
    }
    let json = json.iter().map(|j| json_match(j)).collect::<Result<Vec<_>, _>>()?;
    let mut params: HashMap<String, String> = params
        .into_iter()
        .filter_map(|(name, mut values)| values.pop().map(|v| (name, v)))
        .collect();
    let text_filter = params
        .remove("q")
        .map(|q| non_empty("q", q).and_then(text_search))
        .transpose()?;
    let mut text = |name: &str| params.remove(name).map(|v| non_empty(name, v)).transpose();
    let source = text("source")?;
    let event_type = text("type")?;
    let dedup_key = text("dedup_key")?;
    let since = text("since")?.map(|v| time("since", &v)).transpose()?;
    let until = text("until")?.map(|v| time("until", &v)).transpose()?;
    let verified = match text("verified")?.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(invalid("verified", "must be `true` or `false`")),
    };
    if let (Some(since), Some(until)) = (since, until) {
        if until <= since {
            return Err(invalid("until", "must be later than `since`"));
        }
    }
    let rest = EventFilter {
        sources: None,
        event_type,
        since,
        until,
        dedup_key,
        verified,
        json,
        text: text_filter,
    };
    Ok(RequestedFilter { source, rest })
}

fn non_empty(name: &str, value: String) -> Result<String, ApiError> {
    if value.is_empty() {
        Err(invalid(name, "must not be empty"))
    } else {
        Ok(value)
    }
}

/// An RFC 3339 time as microseconds since the epoch. A `+` offset written
/// unencoded in a URL arrives as a space; that space is read as `+`.
fn time(name: &str, value: &str) -> Result<i64, ApiError> {
    let parsed = DateTime::parse_from_rfc3339(value).or_else(|error| match value.rsplit_once(' ') {
        Some((at, offset)) if offset.len() == 5 && offset.as_bytes()[2] == b':' => {
            DateTime::parse_from_rfc3339(&format!("{at}+{offset}"))
        }
        _ => Err(error),
    });
    parsed
        .map(|t| t.timestamp_micros())
        .map_err(|_| invalid(name, "must be an RFC 3339 time such as 2024-05-01T14:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(query: &str) -> Result<ListRequest, ApiError> {
        parse_list(&format!("/v1/events?{query}").parse().unwrap())
    }

    #[test]
    fn filters_parse_into_store_form() {
        let request = list("source=github&type=push&since=2024-05-01T14:00:00Z&until=2024-05-01T15:00:00%2B00:00&verified=true&limit=5").unwrap();
        assert_eq!(request.limit, 5);
        assert_eq!(request.filter.source.as_deref(), Some("github"));
        assert_eq!(request.filter.rest.since, Some(1_714_572_000_000_000));
        assert_eq!(request.filter.rest.until, Some(1_714_575_600_000_000));
        assert_eq!(request.filter.rest.verified, Some(true));
        assert_eq!(list("").unwrap().limit, DEFAULT_LIMIT);
        // "+02:00" typed unencoded into a URL.
        let request = list("since=2024-05-01T16:00:00+02:00").unwrap();
        assert_eq!(request.filter.rest.since, Some(1_714_572_000_000_000));
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (query, name) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("since=yesterday", "since"),
            ("verified=yes", "verified"),
            ("source=", "source"),
            ("since=2024-05-01T15:00:00Z&until=2024-05-01T14:00:00Z", "until"),
            ("type=a&type=b", "type"),
            ("json=customer:cus_1", "json"),
            ("json=/customer", "json"),
            ("json=/a~2:x", "json"),
            ("q=", "q"),
            ("q=%21%21", "q"),
        ] {
            match list(query) {
                Err(ApiError::InvalidFilter(message)) => {
                    assert!(message.contains(&format!("`{name}`")), "{query}: {message}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    #[test]
    fn json_filters_repeat_and_split_at_the_first_colon() {
        let request = list("json=/data/object/customer:cus_1&json=/at:12:30&q=refund%20issued").unwrap();
        let json = &request.filter.rest.json;
        assert_eq!(json.len(), 2);
        assert_eq!(
            (json[0].pointer.as_str(), json[0].value.as_str()),
            ("/data/object/customer", "cus_1")
        );
        assert_eq!((json[1].pointer.as_str(), json[1].value.as_str()), ("/at", "12:30"));
        assert_eq!(request.filter.rest.text.as_deref(), Some("refund issued"));
        let many = ["json=/a:1"; MAX_JSON_FILTERS + 1].join("&");
        assert!(matches!(list(&many), Err(ApiError::InvalidFilter(m)) if m.contains("`json`")));
    }

    #[test]
    fn unknown_parameters_are_refused() {
        assert!(matches!(list("sorce=github"), Err(ApiError::UnknownParameter(p)) if p == "sorce"));
        let stream = parse_stream(&"/v1/events/stream?limit=5".parse().unwrap());
        assert!(matches!(stream, Err(ApiError::UnknownParameter(p)) if p == "limit"));
        let stream = parse_stream(&"/v1/events/stream?q=x".parse().unwrap());
        assert!(matches!(stream, Err(ApiError::UnknownParameter(p)) if p == "q"));
        let export = parse_export(&"/v1/events/export?cursor=x".parse().unwrap());
        assert!(matches!(export, Err(ApiError::UnknownParameter(p)) if p == "cursor"));
    }
}
