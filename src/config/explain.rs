//! What a failed value means to the person who wrote it. serde words its
//! failures in a few stable forms (`unknown field`, `unknown variant`,
//! `missing field`, `invalid type`, `invalid value`); they are read back here
//! and turned into what was found, what is expected and, where a valid
//! spelling is close (strsim), a suggestion.

use std::net::{IpAddr, Ipv6Addr};

use super::diagnostics::{Diagnostic, Severity};
use super::keypath::{KeyPath, Segment};
use super::layers::Part;

/// How alike (Jaro-Winkler, 0 to 1) a word and a valid spelling that begins
/// with it (or that it begins with) must be to suggest it: `max_body` -> `max_body_bytes`.
const PREFIX_LIKENESS: f64 = 0.9;

/// Time units humantime accepts, to suggest one for a misspelt unit.
const DURATION_UNITS: &[&str] = &[
    "ns", "us", "ms", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "minute", "minutes", "h", "hr",
    "hrs", "hour", "hours", "d", "day", "days", "w", "week", "weeks", "M", "month", "months", "y", "year", "years",
];

const DURATION_EXAMPLE: &str = "a duration such as \"8s\", \"5m\", \"72h\" or \"30d\"";
const ADDRESS_EXAMPLE: &str = "IP:PORT, such as \"127.0.0.1:8080\" or \"[::1]:8080\" (port 0-65535)";

/// serde's failure message, read back.
#[derive(Debug, PartialEq, Eq)]
enum Complaint<'a> {
    UnknownKey {
        key: &'a str,
        valid: Vec<&'a str>,
    },
    UnknownValue {
        value: &'a str,
        valid: Vec<&'a str>,
    },
    MissingKey,
    Mismatch {
        unexpected: &'a str,
        expected: &'a str,
        wrong_type: bool,
    },
    Other(&'a str),
}

/// The key a `missing field` failure names.
pub(super) fn missing_key(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

fn classify(message: &str) -> Complaint<'_> {
    if let Some((key, valid)) = named_then_listed(message, "unknown field `") {
        return Complaint::UnknownKey { key, valid };
    }
    if let Some((value, valid)) = named_then_listed(message, "unknown variant `") {
        return Complaint::UnknownValue { value, valid };
    }
    if missing_key(message).is_some() {
        return Complaint::MissingKey;
    }
    for (prefix, wrong_type) in [("invalid type: ", true), ("invalid value: ", false)] {
        if let Some((unexpected, expected)) = message.strip_prefix(prefix).and_then(|m| m.rsplit_once(", expected ")) {
            return Complaint::Mismatch {
                unexpected,
                expected,
                wrong_type,
            };
        }
    }
    Complaint::Other(message)
}

/// "unknown field `x`, expected one of `a`, `b`" -> ("x", ["a", "b"]).
fn named_then_listed<'a>(message: &'a str, prefix: &str) -> Option<(&'a str, Vec<&'a str>)> {
    let rest = message.strip_prefix(prefix)?;
    let (named, list) = rest.split_once('`')?;
    let valid = list.split('`').skip(1).step_by(2).collect();
    Some((named, valid))
}

/// The diagnostic for a value that failed to deserialize at `path`, and
/// whether it points at the key (unknown keys) or the value.
pub(super) fn explain(path: &KeyPath, message: &str, found: Option<&toml::Value>) -> (Diagnostic, Part) {
    let mut diagnostic = Diagnostic::new(Severity::Error, path.to_string(), "");
    let mut part = Part::Value;
    match classify(message) {
        Complaint::UnknownKey { key, valid } => {
            diagnostic.message = format!("unknown key `{key}`");
            diagnostic.suggestion = closest(key, &valid, path.parent().as_ref().and_then(KeyPath::last_key));
            diagnostic.expected = one_of(&valid);
            part = Part::Key;
        }
        Complaint::UnknownValue { value, valid } => {
            diagnostic.message = format!("unknown value `{value}`");
            diagnostic.suggestion = closest(value, &valid, None);
            diagnostic.expected = one_of(&valid);
        }
        Complaint::MissingKey => diagnostic.message = "required key is missing".into(),
        Complaint::Mismatch {
            unexpected,
            expected,
            wrong_type,
        } => mismatch(&mut diagnostic, unexpected, expected, wrong_type, found),
        Complaint::Other("invalid socket address syntax") => address(&mut diagnostic, found),
        Complaint::Other(other) => diagnostic.message = other.to_owned(),
    }
    if part == Part::Value {
        reveal(&mut diagnostic, path, found);
    }
    (diagnostic, part)
}

fn mismatch(
    diagnostic: &mut Diagnostic,
    unexpected: &str,
    expected: &str,
    wrong_type: bool,
    found: Option<&toml::Value>,
) {
    if expected == "a duration" {
        return duration(diagnostic, found);
    }
    if expected == "socket address" {
        return address(diagnostic, found);
    }
    if let Some((min, max)) = integer_range(expected) {
        diagnostic.expected = Some(format!("a whole number from {min} to {max}"));
        diagnostic.message = if wrong_type {
            format!("expected a whole number, found {}", describe(unexpected))
        } else {
            "the number is out of range".into()
        };
        let digits = found
            .and_then(toml::Value::as_str)
            .filter(|s| s.trim().parse::<i128>().is_ok());
        diagnostic.suggestion = digits.map(|s| s.trim().to_owned());
        return;
    }
    let expected = plain_expectation(expected);
    let what = found.map_or_else(|| describe(unexpected), type_name);
    diagnostic.message = format!("expected {expected}, found {what}");
    diagnostic.expected = Some(expected);
}

fn duration(diagnostic: &mut Diagnostic, found: Option<&toml::Value>) {
    diagnostic.expected = Some(DURATION_EXAMPLE.into());
    diagnostic.message = match found {
        Some(toml::Value::String(text)) => match humantime::parse_duration(text) {
            Err(humantime::DurationError::UnknownUnit {
                start,
                end,
                unit,
                value,
            }) if !unit.is_empty() => {
                diagnostic.suggestion =
                    closest(&unit, DURATION_UNITS, None).map(|u| format!("{}{u}{}", &text[..start], &text[end..]));
                format!("`{unit}` is not a time unit (after {value})")
            }
            Err(humantime::DurationError::UnknownUnit { value, .. }) => {
                format!("a duration needs a unit, e.g. \"{value}s\" or \"{value}h\"")
            }
            Err(humantime::DurationError::NumberExpected(_) | humantime::DurationError::InvalidCharacter(_)) => {
                "not a duration: write a number, then a unit".into()
            }
            Err(error) => format!("not a duration: {error}"),
            Ok(_) => "not a duration".into(),
        },
        Some(toml::Value::Integer(n)) => format!("a duration is a string with a unit, e.g. \"{n}s\" or \"{n}h\""),
        Some(other) => format!("expected a duration, found {}", type_name(other)),
        None => "expected a duration".into(),
    };
}

fn address(diagnostic: &mut Diagnostic, found: Option<&toml::Value>) {
    diagnostic.expected = Some(ADDRESS_EXAMPLE.into());
    let (message, suggestion) = match found {
        Some(toml::Value::String(text)) => address_text(text),
        Some(toml::Value::Integer(port)) => ("the address lacks an IP".into(), Some(format!("127.0.0.1:{port}"))),
        Some(other) => (format!("expected an address, found {}", type_name(other)), None),
        None => ("not an IP:PORT address".into(), None),
    };
    diagnostic.message = message;
    diagnostic.suggestion = suggestion;
}

/// What is wrong with an address written as a string, and a fix where one is plain.
fn address_text(text: &str) -> (String, Option<String>) {
    let Some((host, port)) = text.rsplit_once(':') else {
        return match text.parse::<u16>() {
            Ok(port) => ("the address lacks an IP".into(), Some(format!("127.0.0.1:{port}"))),
            Err(_) => ("not an IP:PORT address".into(), None),
        };
    };
    if let Ok(number) = port.parse::<u64>() {
        if number > u64::from(u16::MAX) {
            return (format!("port {number} is out of range (0-65535)"), None);
        }
    } else {
        return (format!("`{port}` is not a port number"), None);
    }
    if host.is_empty() {
        return (
            "the address lacks an IP: 0.0.0.0 listens on every interface, 127.0.0.1 on loopback only".into(),
            Some(format!("0.0.0.0:{port}")),
        );
    }
    if host == "localhost" {
        return (
            "a host name is not an address: write an IP".into(),
            Some(format!("127.0.0.1:{port}")),
        );
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => (
            "an IPv6 address needs brackets".into(),
            Some(format!("[{host}]:{port}")),
        ),
        Err(_) if !is_bracketed_ipv6(host) => (format!("`{host}` is not an IP address"), None),
        _ => ("not an IP:PORT address".into(), None),
    }
}

fn is_bracketed_ipv6(host: &str) -> bool {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok())
}

/// The bounds of an integer type serde names as expected.
fn integer_range(expected: &str) -> Option<(i128, i128)> {
    Some(match expected {
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" | "usize" => (0, u64::MAX.into()),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        "i64" | "isize" => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

/// serde's description of what was found, without the value itself (it may be a secret).
fn describe(unexpected: &str) -> &'static str {
    let kinds = [
        ("boolean", "a boolean"),
        ("integer", "an integer"),
        ("floating point", "a decimal number"),
        ("string", "a string"),
        ("character", "a string"),
        ("sequence", "an array"),
        ("map", "a table"),
    ];
    kinds
        .iter()
        .find(|(prefix, _)| unexpected.starts_with(prefix))
        .map_or("another kind of value", |(_, kind)| kind)
}

/// serde's name for what is expected, in TOML's words.
fn plain_expectation(expected: &str) -> String {
    match expected {
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        // toml's word for an enum given something other than a string.
        "string only" => "a string".into(),
        other if other.starts_with("struct ") => "a table".into(),
        other => other.to_owned(),
    }
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a decimal number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

fn one_of(valid: &[&str]) -> Option<String> {
    match valid {
        [] => None,
        [only] => Some((*only).to_owned()),
        many => Some(format!("one of {}", many.join(", "))),
    }
}

/// The valid spelling closest to `word`, if any is close: a typo or two
/// (Damerau-Levenshtein) or a shortened or lengthened form. Case, `-`
/// versus `_`, and a repeated table name (`dedup_window` in `[dedup]`) are forgiven.
fn closest(word: &str, valid: &[&str], table: Option<&str>) -> Option<String> {
    let normal = |text: &str| text.to_lowercase().replace('-', "_");
    let word = normal(word);
    let mut tries = vec![word.clone()];
    for prefix in table
        .into_iter()
        .flat_map(|t| [normal(t), normal(t.trim_end_matches('s'))])
    {
        if let Some(rest) = word.strip_prefix(&prefix).and_then(|r| r.strip_prefix(['_', '.'])) {
            tries.push(rest.to_owned());
        }
    }
    let close = |attempt: &str, candidate: &str| {
        let typos = strsim::damerau_levenshtein(attempt, candidate);
        let likeness = strsim::jaro_winkler(attempt, candidate);
        let extended = candidate.starts_with(attempt) || attempt.starts_with(candidate);
        (typos <= (attempt.chars().count() / 3).max(1) || (extended && likeness >= PREFIX_LIKENESS)).then_some(likeness)
    };
    valid
        .iter()
        .filter_map(|candidate| {
            let candidate_normal = normal(candidate);
            let best = tries
                .iter()
                .filter_map(|attempt| close(attempt, &candidate_normal))
                .reduce(f64::max)?;
            Some((candidate, best))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(candidate, _)| (*candidate).to_owned())
}

/// Words in a librdkafka option name that mark its value as a secret.
const SECRET_OPTION_WORDS: &[&str] = &["password", "secret", "key", "token", "jaas", "credential"];

/// True for keys whose values may be secrets: source secrets, query
/// tokens, and Kafka options named like `sasl.password`.
fn holds_secret(path: &KeyPath) -> bool {
    let option = match path.segments() {
        [Segment::Key(table), Segment::Key(options), Segment::Key(name), ..]
            if table == "kafka" && options == "options" =>
        {
            Some(name.to_lowercase())
        }
        _ => None,
    };
    matches!(path.last_key(), Some("secrets" | "token" | "verify_token"))
        || option.is_some_and(|name| SECRET_OPTION_WORDS.iter().any(|word| name.contains(word)))
}

/// Fills in the value found, as TOML, when it is safe and short to show:
/// never a secret (an `env:`/`file:` reference is shown), never a table.
pub(super) fn reveal(diagnostic: &mut Diagnostic, path: &KeyPath, found: Option<&toml::Value>) {
    let Some(value) = found else { return };
    let reference = value
        .as_str()
        .is_some_and(|s| s.starts_with("env:") || s.starts_with("file:"));
    diagnostic.secret = holds_secret(path) && !reference;
    let nested = |v: &toml::Value| v.is_table() || v.is_array();
    let flat = match value {
        toml::Value::Table(_) => false,
        toml::Value::Array(items) => !items.iter().any(nested),
        _ => true,
    };
    if flat && !diagnostic.secret {
        diagnostic.found = Some(value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> KeyPath {
        KeyPath::parse(text).unwrap()
    }

    fn string(text: &str) -> toml::Value {
        toml::Value::String(text.into())
    }

    #[test]
    fn serde_messages_are_read_back() {
        assert_eq!(
            classify("unknown field `listn`, expected one of `listen`, `deadline`"),
            Complaint::UnknownKey {
                key: "listn",
                valid: vec!["listen", "deadline"]
            }
        );
        assert_eq!(
            classify("unknown variant `x`, expected `a` or `b`"),
            Complaint::UnknownValue {
                value: "x",
                valid: vec!["a", "b"]
            }
        );
        assert_eq!(classify("missing field `name`"), Complaint::MissingKey);
        assert_eq!(missing_key("missing field `name`"), Some("name"));
        assert_eq!(
            classify("invalid type: integer `8`, expected a duration"),
            Complaint::Mismatch {
                unexpected: "integer `8`",
                expected: "a duration",
                wrong_type: true
            }
        );
        assert_eq!(classify("secret is empty"), Complaint::Other("secret is empty"));
        let (preset, _) = explain(
            &path("sources[0].verify"),
            "invalid type: unit variant, expected string only",
            Some(&toml::Value::Integer(1)),
        );
        assert_eq!(preset.message, "expected a string, found an integer");
    }

    #[test]
    fn misspellings_get_the_closest_valid_spelling() {
        let presets = ["github", "stripe", "standard-webhooks", "none"];
        assert_eq!(closest("githubb", &presets, None).as_deref(), Some("github"));
        assert_eq!(closest("GitHub", &presets, None).as_deref(), Some("github"));
        assert_eq!(
            closest("standard_webhooks", &presets, None).as_deref(),
            Some("standard-webhooks")
        );
        assert_eq!(closest("zzz", &presets, None), None);
        let dedup = ["window", "max_keys", "redis"];
        assert_eq!(closest("dedup_windw", &dedup, Some("dedup")).as_deref(), Some("window"));
        assert_eq!(
            closest("source", &["sources", "ingest"], None).as_deref(),
            Some("sources")
        );
        assert_eq!(
            closest("max_body", &["max_body_bytes", "listen"], None).as_deref(),
            Some("max_body_bytes")
        );
        assert_eq!(
            closest("sha384", &["sha1", "sha256", "sha512"], None),
            None,
            "no guess when none is close"
        );
    }

    #[test]
    fn unknown_keys_point_at_the_key_and_suggest() {
        let (diagnostic, part) = explain(
            &path("dedup.dedup_windw"),
            "unknown field `dedup_windw`, expected one of `window`, `max_keys`, `redis`",
            Some(&string("72h")),
        );
        assert_eq!(part, Part::Key);
        assert_eq!(diagnostic.message, "unknown key `dedup_windw`");
        assert_eq!(diagnostic.suggestion.as_deref(), Some("window"));
        assert_eq!(diagnostic.expected.as_deref(), Some("one of window, max_keys, redis"));
        assert_eq!(diagnostic.found, None);
    }

    #[test]
    fn durations_explain_the_unit() {
        let explained = |value: toml::Value| {
            explain(
                &path("ingest.deadline"),
                "invalid value: string \"x\", expected a duration",
                Some(&value),
            )
            .0
        };
        let forever = explained(string("forever"));
        assert_eq!(forever.found.as_deref(), Some("\"forever\""));
        assert!(forever.expected.unwrap().contains("\"8s\""));
        let minutes = explained(string("5 minuts"));
        assert_eq!(minutes.suggestion.as_deref(), Some("5 minutes"), "{minutes:?}");
        assert!(explained(toml::Value::Integer(8)).message.contains("\"8s\""));
        assert!(explained(string("72")).message.contains("needs a unit"));
    }

    #[test]
    fn addresses_explain_ports_hosts_and_brackets() {
        assert!(address_text("127.0.0.1:99999").0.contains("port 99999 is out of range"));
        assert_eq!(address_text("localhost:8080").1.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(address_text("::1:8080").1.as_deref(), Some("[::1]:8080"));
        assert_eq!(address_text("8080").1.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(address_text(":8080").1.as_deref(), Some("0.0.0.0:8080"));
        assert!(address_text("example:80").0.contains("not an IP"));
        assert!(address_text("1.2.3.4:http").0.contains("not a port"));
    }

    #[test]
    fn numbers_name_their_range_and_quoted_numbers_are_unquoted() {
        let (negative, _) = explain(
            &path("ingest.max_body_bytes"),
            "invalid value: integer `-1`, expected u64",
            Some(&toml::Value::Integer(-1)),
        );
        assert_eq!(negative.message, "the number is out of range");
        assert_eq!(
            negative.expected.as_deref(),
            Some("a whole number from 0 to 18446744073709551615")
        );
        let (quoted, _) = explain(
            &path("dedup.max_keys"),
            "invalid type: string \"5000\", expected usize",
            Some(&string("5000")),
        );
        assert_eq!(quoted.suggestion.as_deref(), Some("5000"));
    }

    #[test]
    fn secrets_are_never_shown_but_references_are() {
        let (literal, _) = explain(
            &path("sources[0].secrets"),
            "invalid type: string \"hunter2\", expected a sequence",
            Some(&string("hunter2")),
        );
        assert_eq!((literal.found, literal.secret), (None, true));
        assert!(!literal.message.contains("hunter2"));
        assert_eq!(literal.expected.as_deref(), Some("an array"));
        let revealed = |key: &str, value: toml::Value| {
            let mut diagnostic = Diagnostic::new(Severity::Error, key, "");
            reveal(&mut diagnostic, &path(key), Some(&value));
            (diagnostic.found, diagnostic.secret)
        };
        let reference = revealed("sources[0].secrets[0]", string("env:NOPE"));
        assert_eq!(reference, (Some("\"env:NOPE\"".into()), false));
        assert_eq!(revealed("kafka.options.\"sasl.password\"", string("pw")), (None, true));
        assert_eq!(
            revealed("kafka.options.acks", string("1")),
            (Some("\"1\"".into()), false)
        );
        assert_eq!(
            revealed("ingest.listen", toml::Value::Table(Default::default())),
            (None, false)
        );
    }
}
