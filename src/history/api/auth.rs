//! Bearer-token authentication and authorisation of the query API. Tokens
//! are compared as SHA-256 digests in constant time (no early exit, no
//! length leak). 401 means "who are you?", 403 "you may not": a missing
//! scope, or a source outside the token's `sources`. Without configured
//! tokens the API is open for reading, but a replay (which writes to Kafka)
//! is always 403: it needs a token with the `replay` scope.

use axum::extract::{Query, Request};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::{Scope, TokenConfig};

/// Query parameters that would carry a token in the URL.
const TOKEN_PARAMETERS: [&str; 2] = ["token", "access_token"];

/// What an authenticated request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// May list, fetch and stream.
    read: bool,
    /// May replay.
    replay: bool,
    /// Sources visible to the token; `None` means all.
    sources: Option<Vec<String>>,
}

impl Grant {
    /// What an open API (no tokens, loopback only) grants: reading everything, never replaying.
    fn open() -> Self {
        Self {
            read: true,
            replay: false,
            sources: None,
        }
    }

    /// 403 unless the token carries `scope`.
    fn require(&self, scope: Scope) -> Result<(), ApiError> {
        let (granted, name) = match scope {
            Scope::Read => (self.read, "read"),
            Scope::Replay => (self.replay, "replay"),
        };
        if granted {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!("the token lacks the `{name}` scope")))
        }
    }

    /// 403 unless the token may see events of `source`.
    pub(crate) fn check_source(&self, source: &str) -> Result<(), ApiError> {
        match &self.sources {
            Some(allowed) if !allowed.iter().any(|s| s == source) => Err(ApiError::Forbidden(format!(
                "the token may not access source `{source}`"
            ))),
            _ => Ok(()),
        }
    }

    /// The sources a query covers: the requested one (if the token may see
    /// it), else the token's own restriction (`None`: all).
    pub(crate) fn visible_sources(&self, requested: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
        match requested {
            Some(source) => {
                self.check_source(source)?;
                Ok(Some(vec![source.to_owned()]))
            }
            None => Ok(self.sources.clone()),
        }
    }
}

/// The configured tokens.
#[derive(Clone)]
pub(crate) struct Authenticator {
    /// SHA-256 of each token with what it grants; empty means an open API.
    tokens: Vec<([u8; 32], Grant)>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Authenticator {
    /// Tokens from `[[query.tokens]]`.
    pub(crate) fn from_config(tokens: &[TokenConfig]) -> Self {
        let tokens = tokens
            .iter()
            .map(|t| {
                let grant = Grant {
                    read: t.scopes.contains(&Scope::Read),
                    replay: t.scopes.contains(&Scope::Replay),
                    sources: t.sources.clone(),
                };
                (digest(t.token.expose()), grant)
            })
            .collect();
        Self { tokens }
    }

    /// True when no token is configured: the API is open (on loopback).
    pub(crate) fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Authenticates the request and checks `scope`: 401 for a missing or
    /// unknown token, 403 for a token without the scope (and for any replay
    /// on an open API).
    pub(crate) fn authorize(&self, headers: &HeaderMap, scope: Scope) -> Result<Grant, ApiError> {
        if self.is_open() && scope == Scope::Replay {
            return Err(ApiError::Forbidden(
                "replays need a bearer token with the `replay` scope: configure [[query.tokens]]".into(),
            ));
        }
        let grant = self.authenticate(headers)?;
        grant.require(scope)?;
        Ok(grant)
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Grant, ApiError> {
        if self.is_open() {
            return Ok(Grant::open());
        }
        let presented = bearer_token(headers).ok_or(ApiError::Unauthorized)?;
        let presented = digest(presented.as_bytes());
        let mut found = None;
        // Every token is compared, whichever matches.
        for (expected, grant) in &self.tokens {
            if bool::from(expected.ct_eq(&presented)) {
                found = Some(grant);
            }
        }
        found.cloned().ok_or(ApiError::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Middleware: 400 `token_in_url` for `?token=` or `?access_token=`, before
/// anything else looks at the request.
pub(crate) async fn reject_token_in_url(request: Request, next: Next) -> Response {
    // Names are compared after percent-decoding; an undecodable query is left to the route.
    let names = Query::<Vec<(String, String)>>::try_from_uri(request.uri())
        .map(|Query(pairs)| pairs)
        .unwrap_or_default();
    if names
        .iter()
        .any(|(name, _)| TOKEN_PARAMETERS.iter().any(|t| name.eq_ignore_ascii_case(t)))
    {
        return ApiError::TokenInUrl.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use axum::http::HeaderValue;

    fn authenticator() -> Authenticator {
        Authenticator::from_config(&[
            TokenConfig {
                token: Secret::from_bytes("reader"),
                scopes: vec![Scope::Read],
                sources: Some(vec!["github".into()]),
            },
            TokenConfig {
                token: Secret::from_bytes("admin"),
                scopes: vec![Scope::Read, Scope::Replay],
                sources: None,
            },
        ])
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn tokens_map_to_their_grants() {
        let auth = authenticator();
        assert!(matches!(
            auth.authorize(&HeaderMap::new(), Scope::Read),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorize(&bearer("nope"), Scope::Read),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorize(&bearer("reader"), Scope::Replay),
            Err(ApiError::Forbidden(_))
        ));
        let grant = auth.authorize(&bearer("reader"), Scope::Read).unwrap();
        assert!(grant.check_source("stripe").is_err());
        assert_eq!(grant.visible_sources(None).unwrap(), Some(vec!["github".to_owned()]));
        assert!(auth
            .authorize(&bearer("admin"), Scope::Replay)
            .unwrap()
            .visible_sources(None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn no_tokens_means_an_api_open_for_reading_only() {
        let auth = Authenticator::from_config(&[]);
        assert_eq!(auth.authorize(&HeaderMap::new(), Scope::Read).unwrap(), Grant::open());
        let refused = auth.authorize(&bearer("anything"), Scope::Replay);
        assert!(
            matches!(&refused, Err(ApiError::Forbidden(message)) if message.contains("[[query.tokens]]")),
            "{refused:?}"
        );
    }

    #[test]
    fn only_the_bearer_scheme_is_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWRtaW4="));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  admin "));
        assert_eq!(bearer_token(&headers), Some("admin"));
    }
}
