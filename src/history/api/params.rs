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
use crate::history::store::EventFilter;

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest `limit`.
pub const MAX_LIMIT: u32 = 1000;

/// Parameters both routes take.
const FILTER_PARAMETERS: [&str; 6] = ["source", "type", "since", "until", "dedup_key", "verified"];
/// Parameters only the list route takes.
const PAGE_PARAMETERS: [&str; 2] = ["limit", "cursor"];

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
        .chain(PAGE_PARAMETERS.iter())
        .copied()
        .collect();
    let mut params = collect(uri, &allowed)?;
    let limit = match params.remove("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| invalid("limit", &format!("must be an integer from 1 to {MAX_LIMIT}")))?,
    };
    let cursor = params.remove("cursor").map(|c| non_empty("cursor", c)).transpose()?;
    Ok(ListRequest {
        filter: filter(params)?,
        limit,
        cursor,
    })
}

/// Parses the stream route's query.
pub(crate) fn parse_stream(uri: &Uri) -> Result<RequestedFilter, ApiError> {
    filter(collect(uri, &FILTER_PARAMETERS)?)
}

fn invalid(name: &str, problem: &str) -> ApiError {
    ApiError::InvalidFilter(format!("`{name}` {problem}"))
}

/// The parameters by name: each allowed and given at most once.
fn collect(uri: &Uri, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|_| ApiError::InvalidFilter("the query string is malformed".into()))?;
    let mut params = HashMap::new();
    for (name, value) in pairs {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::UnknownParameter(name));
        }
        if params.contains_key(&name) {
            return Err(invalid(&name, "is given more than once"));
        }
        params.insert(name, value);
    }
    Ok(params)
}

fn filter(mut params: HashMap<String, String>) -> Result<RequestedFilter, ApiError> {
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
    fn unknown_parameters_are_refused() {
        assert!(matches!(list("sorce=github"), Err(ApiError::UnknownParameter(p)) if p == "sorce"));
        let stream = parse_stream(&"/v1/events/stream?limit=5".parse().unwrap());
        assert!(matches!(stream, Err(ApiError::UnknownParameter(p)) if p == "limit"));
    }
}
