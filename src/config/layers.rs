//! The layers of a configuration as one TOML tree: the file, parsed with
//! spans so every key and value has a line and column, then the
//! `HOOKGATE_<TABLE>__<KEY>` environment variables on top, each remembered by
//! the variable that set it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use serde::de::IntoDeserializer;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostics::{Diagnostic, Location, Severity};
use super::keypath::{KeyPath, Segment};

/// Variables overriding the file start with this and hold `__` between levels.
const ENV_PREFIX: &str = "HOOKGATE_";

/// Where a key and its value were written.
#[derive(Debug, Clone)]
struct Spans {
    key: Range<usize>,
    value: Range<usize>,
}

/// Which part of an entry a problem points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// The key (an unknown key).
    Key,
    /// The value (everything else).
    Value,
}

/// The file and the environment, merged, with the origin of every value.
#[derive(Debug, Default)]
pub(super) struct Layers {
    /// The file's text ("" without a file).
    pub(super) text: String,
    /// File values with environment values on top.
    pub(super) root: toml::Table,
    /// TOML syntax errors, and environment variables that name nothing.
    pub(super) problems: Vec<Diagnostic>,
    /// Keys set by environment variables, with the variable.
    pub(super) overrides: BTreeMap<KeyPath, String>,
    spans: HashMap<KeyPath, Spans>,
}

impl Layers {
    /// Parses the file's text. A line with a TOML syntax error is reported
    /// and blanked out, and the rest parsed again, so what is fine is still checked.
    pub(super) fn from_text(text: &str) -> Self {
        let (root, spans, errors) = parse_blanking(text);
        let problems = errors
            .iter()
            .map(|error| {
                let mut problem = Diagnostic::new(Severity::Error, "", syntax_message(error.message()));
                problem.location = error.span().map(|span| Location::of(text, span));
                problem
            })
            .collect();
        Self {
            text: text.to_owned(),
            root,
            problems,
            spans,
            ..Self::default()
        }
    }

    /// True when lines were blanked for syntax errors: a key the file seems
    /// to lack may be on one of them.
    pub(super) fn damaged(&self) -> bool {
        self.problems.iter().any(|problem| problem.env.is_none())
    }

    /// Puts environment overrides on top: `HOOKGATE_INGEST__LISTEN=...` sets
    /// `ingest.listen`; a number step indexes an array (`HOOKGATE_SOURCES__0__TOPIC`).
    pub(super) fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        for (variable, raw) in vars {
            let Some(path) = env_path(&variable) else {
                continue;
            };
            if set(&mut self.root, path.segments(), env_value(&raw)) {
                self.overrides.insert(path, variable);
            } else {
                let mut problem = Diagnostic::new(
                    Severity::Error,
                    path.to_string(),
                    "the environment variable names an array entry that the file does not have",
                );
                problem.env = Some(variable);
                self.problems.push(problem);
            }
        }
        self
    }

    /// The value at `path` as the layers hold it.
    pub(super) fn value(&self, path: &KeyPath) -> Option<&toml::Value> {
        let (first, rest) = path.segments().split_first()?;
        let Segment::Key(key) = first else { return None };
        rest.iter()
            .try_fold(self.root.get(key)?, |value, segment| match segment {
                Segment::Key(key) => value.get(key.as_str()),
                Segment::Index(index) => value.get(*index),
            })
    }

    /// Places a problem about `path`: the variable that set it or one of its
    /// tables, else the nearest line of the file that holds it.
    pub(super) fn place(&self, diagnostic: &mut Diagnostic, path: &KeyPath, part: Part) {
        for ancestor in path.ancestry() {
            if let Some(variable) = self.overrides.get(&ancestor) {
                diagnostic.env = Some(variable.clone());
                return;
            }
        }
        let found = path.ancestry().find_map(|ancestor| {
            let spans = self.spans.get(&ancestor)?;
            Some(if part == Part::Key && ancestor == *path {
                spans.key.clone()
            } else {
                spans.value.clone()
            })
        });
        diagnostic.location = found.map(|span| Location::of(&self.text, span));
    }
}

/// The file's tree and spans, every line with a syntax error blanked out
/// (byte offsets kept, so spans still point into the original text).
fn parse_blanking(original: &str) -> (toml::Table, HashMap<KeyPath, Spans>, Vec<toml::de::Error>) {
    let mut text = original.to_owned();
    let mut errors = Vec::new();
    // Each round blanks at least one more line.
    for _ in 0..=original.lines().count() {
        let error = match parse_once(&text) {
            Ok((root, spans)) => return (root, spans, errors),
            Err(error) => error,
        };
        let blanked = error.span().is_some_and(|span| blank(&mut text, span));
        errors.push(error);
        if !blanked {
            break;
        }
    }
    (toml::Table::new(), HashMap::new(), errors)
}

fn parse_once(text: &str) -> Result<(toml::Table, HashMap<KeyPath, Spans>), toml::de::Error> {
    let document = DeTable::parse(text)?;
    let mut spans = HashMap::new();
    index_table(document.get_ref(), &KeyPath::default(), &mut spans);
    let root = toml::Table::deserialize(document.into_deserializer())?;
    Ok((root, spans))
}

/// Blanks the lines `span` touches, keeping every byte offset; a broken
/// table header's keys go with it (else they would land in the table
/// above). False when there was nothing left to blank.
fn blank(text: &mut String, span: Range<usize>) -> bool {
    let from = span.start.min(text.len());
    let to = span.end.clamp(from, text.len());
    let start = text[..from].rfind('\n').map_or(0, |i| i + 1);
    let mut end = text[to..].find('\n').map_or(text.len(), |i| to + i);
    if text[start..end].trim_start().starts_with('[') {
        end = next_header(text, end);
    }
    if text[start..end].trim().is_empty() {
        return false;
    }
    let spaces: String = text[start..end]
        .chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_owned()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect();
    text.replace_range(start..end, &spaces);
    true
}

/// Where the line before the next table header (`[name]`, `[[name]]`) after `from` ends, or the end.
fn next_header(text: &str, from: usize) -> usize {
    let mut offset = from;
    for line in text[from..].split_inclusive('\n') {
        if offset > from && line.trim_start().starts_with('[') {
            return offset - 1;
        }
        offset += line.len();
    }
    text.len()
}

/// Records the spans of every key and value under `table`.
fn index_table(table: &DeTable<'_>, path: &KeyPath, spans: &mut HashMap<KeyPath, Spans>) {
    for (key, value) in table.iter() {
        let child = path.child(key.get_ref());
        spans.insert(
            child.clone(),
            Spans {
                key: key.span(),
                value: value.span(),
            },
        );
        index_value(value, &child, spans);
    }
}

fn index_value(value: &Spanned<DeValue<'_>>, path: &KeyPath, spans: &mut HashMap<KeyPath, Spans>) {
    match value.get_ref() {
        DeValue::Table(table) => index_table(table, path, spans),
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                let child = path.index(index);
                spans.insert(
                    child.clone(),
                    Spans {
                        key: item.span(),
                        value: item.span(),
                    },
                );
                index_value(item, &child, spans);
            }
        }
        _ => {}
    }
}

/// The parser's message, with its first letter lowered to read like ours.
fn syntax_message(message: &str) -> String {
    let message = message.trim().trim_end_matches('.');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("TOML syntax: {}{}", first.to_lowercase(), chars.as_str()),
        None => "TOML syntax error".to_owned(),
    }
}

/// `HOOKGATE_INGEST__LISTEN` -> `ingest.listen`; `None` for other variables.
fn env_path(variable: &str) -> Option<KeyPath> {
    let rest = variable.strip_prefix(ENV_PREFIX)?;
    if !rest.contains("__") {
        return None;
    }
    let mut path = KeyPath::default();
    for step in rest.to_lowercase().split("__") {
        if step.is_empty() {
            return None;
        }
        path = match step.parse::<usize>() {
            Ok(index) => path.index(index),
            Err(_) => path.child(step),
        };
    }
    Some(path)
}

/// A variable's text read as a TOML value (`8080`, `true`, `["a"]`,
/// `{ per_second = 5, burst = 10 }`), or else taken as a string.
fn env_value(raw: &str) -> toml::Value {
    let parsed = format!("value = {raw}").parse::<toml::Table>().ok();
    parsed
        .filter(|table| table.len() == 1)
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

/// Sets the value at `path`, creating tables on the way; false when an
/// index step points past the end of an array (or at something else).
fn set(table: &mut toml::Table, path: &[Segment], value: toml::Value) -> bool {
    let Some((Segment::Key(key), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        table.insert(key.clone(), value);
        return true;
    }
    let slot = table
        .entry(key.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    set_in(slot, rest, value)
}

fn set_in(slot: &mut toml::Value, path: &[Segment], value: toml::Value) -> bool {
    match (&path[0], slot) {
        (Segment::Index(index), toml::Value::Array(items)) => match items.get_mut(*index) {
            Some(item) if path.len() == 1 => {
                *item = value;
                true
            }
            Some(item) => set_in(item, &path[1..], value),
            None => false,
        },
        (Segment::Key(_), toml::Value::Table(table)) => set(table, path, value),
        (Segment::Key(_), other) => {
            // The variable replaces a value of another type with a table.
            let mut table = toml::Table::new();
            let done = set(&mut table, path, value);
            *other = toml::Value::Table(table);
            done
        }
        (Segment::Index(_), _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keys_and_values_are_placed_by_line_and_column() {
        let layers = Layers::from_text("[ingest]\nlisten = \"x\"\n[[sources]]\nname = \"a\"\n");
        let mut diagnostic = Diagnostic::new(Severity::Error, "", "");
        layers.place(&mut diagnostic, &KeyPath::parse("ingest.listen").unwrap(), Part::Value);
        let location = diagnostic.location.clone().unwrap();
        assert_eq!((location.line, location.column), (2, 10));
        layers.place(
            &mut diagnostic,
            &KeyPath::parse("sources[0].verify").unwrap(),
            Part::Value,
        );
        let location = diagnostic.location.clone().unwrap();
        assert_eq!(
            (location.line, location.column),
            (3, 1),
            "an absent key: its table's header"
        );
    }

    #[test]
    fn environment_variables_override_and_are_named() {
        let layers =
            Layers::from_text("[ingest]\nlisten = \"127.0.0.1:1\"\n[[sources]]\nname = \"a\"\n").with_env(vars(&[
                ("HOOKGATE_INGEST__LISTEN", "127.0.0.1:2"),
                ("HOOKGATE_INGEST__MAX_IN_FLIGHT", "5"),
                ("HOOKGATE_RATE_LIMIT__PER_CLIENT_IP", "{ per_second = 1, burst = 2 }"),
                ("HOOKGATE_SOURCES__0__TOPIC", "t"),
                ("HOOKGATE_SOURCES__3__TOPIC", "t"),
                ("HOOKGATE_READ_TOKEN", "not a key: no double underscore"),
                ("OTHER__THING", "x"),
            ]));
        let value = |key: &str| layers.value(&KeyPath::parse(key).unwrap()).cloned();
        assert_eq!(value("ingest.listen"), Some(toml::Value::String("127.0.0.1:2".into())));
        assert_eq!(value("ingest.max_in_flight"), Some(toml::Value::Integer(5)));
        assert_eq!(value("rate_limit.per_client_ip.burst"), Some(toml::Value::Integer(2)));
        assert_eq!(value("sources[0].topic"), Some(toml::Value::String("t".into())));
        assert_eq!(layers.overrides.len(), 4, "{:?}", layers.overrides);
        let mut diagnostic = Diagnostic::new(Severity::Error, "", "");
        layers.place(&mut diagnostic, &KeyPath::parse("ingest.listen").unwrap(), Part::Value);
        assert_eq!(diagnostic.env.as_deref(), Some("HOOKGATE_INGEST__LISTEN"));
        assert_eq!(layers.problems.len(), 1, "sources[3] does not exist");
        assert_eq!(layers.problems[0].env.as_deref(), Some("HOOKGATE_SOURCES__3__TOPIC"));
        assert!(!layers.damaged(), "environment problems are no syntax errors");
    }

    #[test]
    fn lines_with_syntax_errors_are_blanked_and_the_rest_parsed() {
        let text =
            "[ingest]\nlisten = 127.0.0.1:1\ndeadline = \"8s\"\n[dedup\nwindow = \"1h\"\n[query]\nstore = \"s\"\n";
        let layers = Layers::from_text(text);
        let mut lines: Vec<usize> = layers
            .problems
            .iter()
            .map(|p| p.location.as_ref().unwrap().line)
            .collect();
        lines.sort();
        assert_eq!(lines, [2, 4]);
        assert!(layers.damaged());
        let value = |key: &str| layers.value(&KeyPath::parse(key).unwrap()).cloned();
        assert_eq!(value("ingest.deadline"), Some(toml::Value::String("8s".into())));
        assert_eq!(value("ingest.window"), None, "a broken header's keys go with it");
        assert_eq!(value("query.store"), Some(toml::Value::String("s".into())));
    }

    #[test]
    fn blanking_keeps_offsets_and_stops_when_nothing_is_left() {
        let mut text = "a = 1\nb = \"é\" x\nc = 2\n".to_owned();
        assert!(blank(&mut text, 13..14));
        assert_eq!(text, format!("a = 1\n{}\nc = 2\n", " ".repeat(10)), "é is two bytes");
        assert!(!blank(&mut text, 8..9), "already blank");
        let (root, _, errors) = parse_blanking("x = [\n1,\n");
        assert!(root.is_empty() && !errors.is_empty());
    }
}
