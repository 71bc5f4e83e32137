//! Per-source routing by event type (`routes = [{ event_type, topic }]`) and
//! the one-wildcard glob its patterns are written in. `*` stands for any run
//! of characters (also none); every other character stands for itself.
//! First match wins, so a route whose every event type an earlier route
//! already takes can never be chosen: validation refuses it ([`covers`]).

use serde::Deserialize;

/// One `routes` entry of a source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Glob on the event type: `push`, `pull_request*`, `*.created`.
    pub event_type: String,
    /// Topic of the events it matches.
    pub topic: String,
}

/// The topic of an event of `event_type`: the first matching route's, else `fallback`.
pub fn route<'a>(routes: &'a [RouteConfig], event_type: &str, fallback: &'a str) -> &'a str {
    routes
        .iter()
        .find(|r| matches(&r.event_type, event_type))
        .map_or(fallback, |r| r.topic.as_str())
}

/// True when the glob `pattern` matches `text` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<Token> = tokens(pattern);
    let text: Vec<Token> = text.chars().map(Token::Char).collect();
    covers_tokens(&pattern, &text)
}

/// True when `pattern` matches every text `other` matches, i.e. a route with
/// `other` placed after one with `pattern` is unreachable. Decided
/// symbolically: a `*` of `other` can only be taken by a `*` of `pattern`.
/// Exact for one-wildcard globs: witness texts that put a character found in
/// neither pattern where `other` has a `*` are matched by `pattern` only so.
pub fn covers(pattern: &str, other: &str) -> bool {
    covers_tokens(&tokens(pattern), &tokens(other))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `*`.
    Any,
    /// Any other character.
    Char(char),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        let token = if c == '*' { Token::Any } else { Token::Char(c) };
        // `**` means what `*` means; folding keeps the matcher linear in stars.
        if !(token == Token::Any && out.last() == Some(&Token::Any)) {
            out.push(token);
        }
    }
    out
}

/// Dynamic programming over (pattern prefix, subject prefix): a pattern `*`
/// takes any run of subject tokens (stars included); a pattern character
/// takes only the same character.
fn covers_tokens(pattern: &[Token], subject: &[Token]) -> bool {
    let mut row = vec![false; subject.len() + 1];
    row[0] = true;
    for token in pattern {
        let mut next = vec![false; subject.len() + 1];
        for j in 0..=subject.len() {
            next[j] = match token {
                Token::Any => row[j] || (j > 0 && next[j - 1]),
                Token::Char(c) => j > 0 && row[j - 1] && subject[j - 1] == Token::Char(*c),
            };
        }
        row = next;
    }
    row[subject.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(event_type: &str, topic: &str) -> RouteConfig {
        RouteConfig {
            event_type: event_type.into(),
            topic: topic.into(),
        }
    }

    #[test]
    fn globs_match_whole_event_types() {
        assert!(matches("push", "push"));
        assert!(!matches("push", "pushed"));
        assert!(matches("pull_request*", "pull_request"));
        assert!(matches("pull_request*", "pull_request_review"));
        assert!(!matches("pull_request*", "pull"));
        assert!(matches("*.created", "customer.created"));
        assert!(!matches("*.created", "customer.created.x"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(matches("*", ""));
        assert!(!matches("x", ""));
    }

    #[test]
    fn the_first_matching_route_wins_else_the_fallback() {
        let routes = [r("push", "gh.push"), r("pull_request*", "gh.prs"), r("*", "gh.other")];
        assert_eq!(route(&routes, "push", "t"), "gh.push");
        assert_eq!(route(&routes, "pull_request_review", "t"), "gh.prs");
        assert_eq!(route(&routes, "issues", "t"), "gh.other");
        assert_eq!(route(&routes[..2], "issues", "t"), "t");
    }

    #[test]
    fn coverage_is_inclusion_of_what_the_globs_match() {
        assert!(covers("pull_request*", "pull_request_review"));
        assert!(covers("pull_request*", "pull_request_*"));
        assert!(covers("*", "anything*"));
        assert!(covers("push", "push"));
        assert!(covers("*a*", "*a*a*"));
        assert!(covers("a**", "a*"));
        assert!(!covers("pull_request_*", "pull_request*"));
        assert!(!covers("push", "push*"));
        assert!(!covers("*.created", "*.updated"));
        assert!(!covers("a*b", "a*"));
        assert!(!covers("*a*a*", "*a*"));
    }

    proptest::proptest! {
        /// Whatever `other` matches, a covering `pattern` matches too.
        #[test]
        fn a_covering_pattern_matches_what_the_other_matches(
            pattern in "[ab*]{0,5}", other in "[ab*]{0,5}", fill in "[abc]{0,3}"
        ) {
            if covers(&pattern, &other) {
                let text = other.replace('*', &fill);
                proptest::prop_assert!(matches(&pattern, &text), "{pattern} covers {other} but not {text}");
            }
        }
    }
}
