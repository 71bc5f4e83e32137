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
