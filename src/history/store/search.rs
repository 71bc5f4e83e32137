//! Payload search: `json=<pointer>:<value>` (the JSON body holds that
//! scalar at that RFC 6901 pointer) and `q=<text>` (the body contains that
//! word or phrase), as SQL conditions for each dialect.
//!
//! A JSON value compares as text: a string by its content, a number or
//! boolean by its JSON spelling (`json=/amount:100`, `json=/paid:true`);
//! objects, arrays and null never match, nor does a body that is not JSON.
//! The pointer is written into the SQL as a literal (its characters are
//! restricted and quotes doubled) so that the expression is the same as the
//! one a configured `index` pointer is indexed on; the value is bound.
//!
//! - SQLite: `json_valid`/`json_type`/`->>` over the body as text; words
//!   through the FTS5 table `events_fts` kept by triggers.
//! - PostgreSQL: the functions `hookgate_json_value` and
//!   `hookgate_body_words` of the migrations (NULL for bodies that are not
//!   UTF-8 JSON or text, never an error); the GIN index on the words only
//!   when `query.text_index` asks for it (without it, `q=` reads each
//!   candidate body).

use sha2::{Digest, Sha256};

use super::sql::Dialect;

/// Longest pointer accepted, in bytes.
const MAX_POINTER_LEN: usize = 256;
/// Most segments in a pointer.
const MAX_SEGMENTS: usize = 32;
/// Most all-digit segments in a pointer (each may be an array index or a
/// key, and SQLite tries both).
const MAX_NUMERIC_SEGMENTS: usize = 2;
/// Longest `q` text, in bytes.
pub(crate) const MAX_TEXT_LEN: usize = 256;
/// Prefix of the names of the indexes on configured pointers.
pub(super) const INDEX_PREFIX: &str = "events_json_";

/// Why a JSON pointer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// It does not start with `/`.
    #[error("must start with `/` (an RFC 6901 JSON pointer such as /data/object/customer)")]
    NotAbsolute,
    /// It is too long or too deep.
    #[error("is longer than {MAX_POINTER_LEN} bytes or {MAX_SEGMENTS} segments")]
    TooLong,
    /// A `~` not followed by `0` or `1`.
    #[error("has a `~` not followed by `0` or `1`")]
    BadEscape,
    /// An empty segment (`//` or a trailing `/`).
    #[error("has an empty segment")]
    EmptySegment,
    /// A character hookgate does not accept in a pointer.
    #[error("may not contain `\"`, `\\`, `:` or control characters")]
    BadCharacter,
    /// Too many all-digit segments.
    #[error("has more than {MAX_NUMERIC_SEGMENTS} all-digit segments")]
    TooManyNumeric,
}

/// An RFC 6901 JSON pointer naming a value inside a body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPointer {
    /// The pointer as written.
    text: String,
    /// Its unescaped reference tokens.
    segments: Vec<String>,
}

impl JsonPointer {
    /// Parses `/a/b~1c` (segments `a`, `b/c`).
    pub fn parse(text: &str) -> Result<Self, PointerError> {
        let rest = text.strip_prefix('/').ok_or(PointerError::NotAbsolute)?;
        if text.len() > MAX_POINTER_LEN {
            return Err(PointerError::TooLong);
        }
        if text.chars().any(|c| matches!(c, '"' | '\\' | ':') || c.is_control()) {
            return Err(PointerError::BadCharacter);
        }
        let segments = rest.split('/').map(unescape).collect::<Result<Vec<_>, _>>()?;
        if segments.len() > MAX_SEGMENTS {
            return Err(PointerError::TooLong);
        }
        if segments.iter().any(String::is_empty) {
            return Err(PointerError::EmptySegment);
        }
        if segments.iter().filter(|s| is_index(s)).count() > MAX_NUMERIC_SEGMENTS {
            return Err(PointerError::TooManyNumeric);
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Name of the index on this pointer (stable across restarts and replicas).
    pub(super) fn index_name(&self) -> String {
        let digest = Sha256::digest(self.text.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{INDEX_PREFIX}{hex}")
    }

    /// SQL of the value at this pointer as text (NULL when absent, not a
    /// scalar, or the body is not JSON): the expression the index holds.
    pub(super) fn value_sql(&self, dialect: Dialect) -> String {
        match dialect {
            Dialect::Sqlite => self.sqlite_value(),
            Dialect::Postgres => {
                let elements: Vec<String> = self.segments.iter().map(|s| format!("\"{}\"", sql_quote(s))).collect();
                format!("hookgate_json_value(body, '{{{}}}'::text[])", elements.join(","))
            }
        }
    }

    /// SQLite paths for the pointer: an all-digit segment is tried as an
    /// array index and as an object key.
    fn sqlite_paths(&self) -> Vec<String> {
        let mut paths = vec![String::from("$")];
        for segment in &self.segments {
            let key = format!(".\"{}\"", sql_quote(segment));
            paths = if is_index(segment) {
                let index = format!("[{segment}]");
                paths
                    .iter()
                    .flat_map(|p| [format!("{p}{index}"), format!("{p}{key}")])
                    .collect()
            } else {
                paths.into_iter().map(|p| p + &key).collect()
            };
        }
        paths
    }

    fn sqlite_value(&self) -> String {
        let text = "CAST(body AS TEXT)";
        let alternatives: Vec<String> = self
            .sqlite_paths()
            .iter()
            .map(|p| {
                format!(
                    "CASE json_type({text}, '{p}') WHEN 'text' THEN {text} ->> '{p}' \
                     WHEN 'integer' THEN {text} -> '{p}' WHEN 'real' THEN {text} -> '{p}' \
                     WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END"
                )
            })
            .collect();
        let value = if alternatives.len() == 1 {
            alternatives.into_iter().next().unwrap_or_default()
        } else {
            format!("COALESCE({})", alternatives.join(", "))
        };
        format!("(CASE WHEN json_valid({text}) THEN {value} END)")
    }
}

impl std::fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One `json=<pointer>:<value>` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonMatch {
    /// Where in the body.
    pub pointer: JsonPointer,
    /// The value, compared as text.
    pub value: String,
}

/// The SQL condition for a `q` text search; `placeholder` is bound to
/// [`text_query`]'s result.
pub(super) fn text_condition(dialect: Dialect, placeholder: &str) -> String {
    match dialect {
        Dialect::Sqlite => {
            format!("rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH {placeholder})")
        }
        Dialect::Postgres => {
            format!("hookgate_body_words(body) @@ phraseto_tsquery('simple', hookgate_words({placeholder}))")
        }
    }
}

/// What `q` is bound as: an FTS5 phrase for SQLite, the text itself for
/// PostgreSQL's `phraseto_tsquery`.
pub(super) fn text_query(dialect: Dialect, text: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("\"{}\"", text.replace('"', "\"\"")),
        Dialect::Postgres => text.to_owned(),
    }
}

/// Name of PostgreSQL's optional word index (`query.text_index`).
pub(super) const TEXT_INDEX: &str = "events_body_words";

/// DDL creating PostgreSQL's word index (if missing) or dropping it (if present).
pub(super) fn text_index_ddl(enabled: bool) -> String {
    if enabled {
        format!("CREATE INDEX IF NOT EXISTS {TEXT_INDEX} ON events USING gin (hookgate_body_words(body))")
    } else {
        format!("DROP INDEX IF EXISTS {TEXT_INDEX}")
    }
}

/// DDL creating the index on `pointer` (if missing).
pub(super) fn create_index(dialect: Dialect, pointer: &JsonPointer) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {} ON events ({}, received_at DESC, id DESC)",
        pointer.index_name(),
        pointer.value_sql(dialect)
    )
}

fn unescape(segment: &str) -> Result<String, PointerError> {
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err(PointerError::BadEscape),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// An RFC 6901 array index: digits without a leading zero.
fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) && (segment == "0" || !segment.starts_with('0'))
}

/// Doubles single quotes for an SQL string literal.
fn sql_quote(text: &str) -> String {
    text.replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_unescape_and_refuse_what_cannot_be_written_safely() {
        let p = JsonPointer::parse("/data/a~1b/c~0d").unwrap();
        assert_eq!(p.segments, ["data", "a/b", "c~d"]);
        for (bad, error) in [
            ("data", PointerError::NotAbsolute),
            ("", PointerError::NotAbsolute),
            ("/a~2", PointerError::BadEscape),
            ("/a//b", PointerError::EmptySegment),
            ("/", PointerError::EmptySegment),
            ("/a\"b", PointerError::BadCharacter),
            ("/a:b", PointerError::BadCharacter),
            ("/1/2/3", PointerError::TooManyNumeric),
        ] {
            assert_eq!(JsonPointer::parse(bad), Err(error), "{bad}");
        }
        assert_eq!(JsonPointer::parse(&"/a".repeat(200)), Err(PointerError::TooLong));
    }

    #[test]
    fn quotes_in_segments_are_doubled_in_both_dialects() {
        let p = JsonPointer::parse("/it's").unwrap();
        assert!(p.value_sql(Dialect::Sqlite).contains("'$.\"it''s\"'"));
        assert!(p.value_sql(Dialect::Postgres).contains("'{\"it''s\"}'::text[]"));
    }

    #[test]
    fn digit_segments_are_tried_as_index_and_key_in_sqlite() {
        let p = JsonPointer::parse("/items/0/id").unwrap();
        assert_eq!(p.sqlite_paths(), ["$.\"items\"[0].\"id\"", "$.\"items\".\"0\".\"id\""]);
        assert!(!is_index("01"));
        assert!(is_index("10"));
    }

    #[test]
    fn index_names_are_stable_and_distinct() {
        let a = JsonPointer::parse("/a").unwrap();
        assert_eq!(a.index_name(), JsonPointer::parse("/a").unwrap().index_name());
        assert_ne!(a.index_name(), JsonPointer::parse("/b").unwrap().index_name());
        assert!(a.index_name().starts_with(INDEX_PREFIX));
    }

    #[test]
    fn fts_phrases_escape_double_quotes() {
        assert_eq!(text_query(Dialect::Sqlite, "say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_query(Dialect::Postgres, "say hi"), "say hi");
    }
}
