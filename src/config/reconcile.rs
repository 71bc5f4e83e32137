//! `[sources.reconcile]`: asking the provider's API which webhooks it sent,
//! to find those that never reached hookgate (see `crate::reconcile`), and
//! the checks such a table must pass.

use std::time::Duration;

use serde::Deserialize;

use super::{Preset, Secret};

/// `[sources.reconcile]` of a `github` or `stripe` source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Base URL of the provider's REST API; defaults to the public one (GitHub Enterprise: `https://HOST/api/v3`).
    pub api: Option<String>,
    /// GitHub only: the hook whose deliveries are listed, `repos/OWNER/REPO/hooks/ID`, `orgs/ORG/hooks/ID` or `app/hook`.
    pub hook: Option<String>,
    /// The API credential: a GitHub token (fine-grained, classic or installation) or a Stripe secret/restricted key.
    pub token: Secret,
    /// Time between two runs.
    #[serde(default = "reconcile_defaults::interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How far back each run looks.
    #[serde(default = "reconcile_defaults::lookback", with = "humantime_serde")]
    pub lookback: Duration,
    /// Items younger than this are left for a later run: the provider may still be sending them.
    #[serde(default = "reconcile_defaults::settle", with = "humantime_serde")]
    pub settle: Duration,
    /// Stripe only: the event types the webhook endpoint subscribes to (default: every type).
    #[serde(default)]
    pub types: Vec<String>,
    /// Only report what is missing; ask for no redelivery and publish nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The public API of each provider that can be reconciled.
pub fn default_api(preset: Preset) -> Option<&'static str> {
    match preset {
        Preset::Github => Some("https://api.github.com"),
        Preset::Stripe => Some("https://api.stripe.com"),
        _ => None,
    }
}

impl ReconcileConfig {
    /// The API base URL in force, without a trailing slash.
    pub fn api_for(&self, preset: Preset) -> String {
        let api = self.api.as_deref().or(default_api(preset)).unwrap_or_default();
        api.trim_end_matches('/').to_owned()
    }
}

/// GitHub keeps a hook's deliveries for this long; a longer lookback finds nothing more.
pub const GITHUB_RETENTION: Duration = Duration::from_secs(3 * 24 * 3600);

/// The findings about one source's `[sources.reconcile]` table, as (key suffix, error?, message).
pub(super) fn check(preset: Preset, config: &ReconcileConfig) -> Vec<(&'static str, bool, String)> {
    let mut found = Vec::new();
    if default_api(preset).is_none() {
        found.push((
            "",
            true,
            format!(
                "reconciliation supports verify = \"github\" or \"stripe\", not \"{}\"",
                preset.as_str()
            ),
        ));
        return found;
    }
    if let Some(api) = &config.api {
        check_api(api, &mut found);
    }
    match (preset, &config.hook) {
        (Preset::Github, None) => found.push((
            ".hook",
            true,
            "required: repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app/hook".into(),
        )),
        (Preset::Github, Some(hook)) if !valid_hook(hook) => found.push((
            ".hook",
            true,
            format!("`{hook}` is not repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app/hook"),
        )),
        (Preset::Stripe, Some(_)) => found.push((".hook", true, "only used with verify = \"github\"".into())),
        _ => {}
    }
    if preset == Preset::Github && !config.types.is_empty() {
        found.push((".types", true, "only used with verify = \"stripe\"".into()));
    }
    if config.settle >= config.lookback && !config.lookback.is_zero() {
        found.push((".settle", true, "must be shorter than lookback".into()));
    }
    if config.token.is_literal() {
        found.push((
            ".token",
            false,
            "written literally; prefer env:NAME or file:PATH".into(),
        ));
    }
    if config.interval < Duration::from_secs(1) {
        found.push((".interval", true, "must be at least 1s".into()));
    }
    if config.lookback.is_zero() {
        found.push((".lookback", true, "must be greater than 0".into()));
    } else if preset == Preset::Github && config.lookback > GITHUB_RETENTION {
        found.push((
            ".lookback",
            false,
            "GitHub keeps deliveries for 3 days: a longer lookback finds nothing more".into(),
        ));
    }
    found
}

/// An API URL must be https, or http on a loopback address (tests, local proxies).
fn check_api(api: &str, found: &mut Vec<(&'static str, bool, String)>) {
    match reqwest::Url::parse(api) {
        Ok(url) if url.scheme() == "https" => {}
        Ok(url) if url.scheme() == "http" && is_loopback(&url) => {}
        Ok(_) => found.push((
            ".api",
            true,
            "must be an https:// URL (http:// only on a loopback address): the API key travels with every request"
                .into(),
        )),
        Err(e) => found.push((".api", true, format!("`{api}` is not a URL: {e}"))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

/// `repos/OWNER/REPO/hooks/ID`, `orgs/ORG/hooks/ID` or `app/hook`.
fn valid_hook(hook: &str) -> bool {
    let parts: Vec<&str> = hook.trim_matches('/').split('/').collect();
    let name = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let id = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["app", "hook"] => true,
        ["repos", owner, repo, "hooks", n] => name(owner) && name(repo) && id(n),
        ["orgs", org, "hooks", n] => name(org) && id(n),
        _ => false,
    }
}

/// Serde defaults of `[sources.reconcile]`.
mod reconcile_defaults {
    use std::time::Duration;

    pub(super) fn interval() -> Duration {
        Duration::from_secs(300)
    }
    pub(super) fn lookback() -> Duration {
        Duration::from_secs(24 * 3600)
    }
    pub(super) fn settle() -> Duration {
        Duration::from_secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_the_three_documented_shapes() {
        for good in ["repos/octo/hello-world/hooks/12", "orgs/octo/hooks/1", "app/hook"] {
            assert!(valid_hook(good), "{good}");
        }
        for bad in [
            "repos/octo/hooks/1",
            "orgs/o/hooks/x",
            "users/o/hooks/1",
            "",
            "repos/a/b/hooks/1/x",
        ] {
            assert!(!valid_hook(bad), "{bad}");
        }
    }

    #[test]
    fn api_urls_must_be_https_except_on_loopback() {
        let errors = |api: &str| {
            let mut found = Vec::new();
            check_api(api, &mut found);
            found.len()
        };
        assert_eq!(errors("https://api.github.com"), 0);
        assert_eq!(errors("http://127.0.0.1:9000"), 0);
        assert_eq!(errors("http://[::1]:9000/api"), 0);
        assert_eq!(errors("http://api.example.com"), 1);
        assert_eq!(errors("not a url"), 1);
    }
}
