//! Findings about a configuration. A [`ConfigIssue`] is what a check says
//! (a key and a message); a [`Diagnostic`] is what a person reads: the same
//! with the place it was written (file line and column, or the environment
//! variable that set it), the value found, what was expected and a suggestion.

use std::fmt;
use std::ops::Range;

use serde::Serialize;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// hookgate refuses to start.
    Error,
    /// hookgate starts, but the operator should look.
    Warning,
}

impl Severity {
    /// "error" or "warning".
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding of a check on a parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Error or warning.
    pub severity: Severity,
    /// The key it is about, as the README writes it, e.g. `sources[2].secrets`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigIssue {
    /// A finding that stops hookgate from starting.
    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            key: key.into(),
            message: message.into(),
        }
    }

    /// A finding hookgate starts with.
    pub fn warning(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.severity.as_str(), self.key, self.message)
    }
}

/// Where in the file a value (or key) was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte range in the file text.
    #[serde(skip)]
    pub span: Range<usize>,
}

impl Location {
    /// The line and column of `span` in `text`.
    pub fn of(text: &str, span: Range<usize>) -> Self {
        let start = floor_char_boundary(text, span.start);
        let before = &text[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            span,
        }
    }
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// One problem as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The key, as the README writes it (`sources[0].verify`); empty for TOML syntax errors.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// The value found, as TOML; absent for secrets and when there is none.
    pub found: Option<String>,
    /// What would be accepted.
    pub expected: Option<String>,
    /// A close valid spelling: a key name or a value, as it would be written.
    pub suggestion: Option<String>,
    /// Where in the file, when the value came from the file.
    pub location: Option<Location>,
    /// The environment variable that set the value, when one did.
    pub env: Option<String>,
    /// The value is a secret: its line is not quoted either.
    #[serde(skip)]
    pub secret: bool,
}

impl Diagnostic {
    /// A diagnostic with a message and nothing else yet.
    pub fn new(severity: Severity, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity,
            key: key.into(),
            message: message.into(),
            found: None,
            expected: None,
            suggestion: None,
            location: None,
            env: None,
            secret: false,
        }
    }
}

/// A key whose value came from an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    /// The key, as the README writes it.
    pub key: String,
    /// The variable, e.g. `HOOKGATE_INGEST__LISTEN` (its value is never shown).
    pub variable: String,
}

/// Everything found while reading and checking one configuration.
#[derive(Clone, Default, Serialize)]
pub struct Report {
    /// The file as named on the command line, or "environment" without one.
    pub file: String,
    /// The file's text, to quote the lines problems are on.
    #[serde(skip)]
    pub text: String,
    /// The problems, in file order; environment and unplaced ones last.
    pub diagnostics: Vec<Diagnostic>,
    /// Keys set by environment variables.
    pub overrides: Vec<Override>,
}

impl Report {
    /// How many diagnostics have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == severity).count()
    }

    /// True when hookgate would refuse to start.
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    /// Puts the diagnostics in file order: located ones by position, then the rest as found.
    pub(super) fn sort(&mut self) {
        self.diagnostics
            .sort_by_key(|d| d.location.as_ref().map_or((usize::MAX, 0), |l| (l.line, l.column)));
    }

    /// The first line of a diagnostic: `FILE:LINE:COL: error: KEY: MESSAGE`.
    pub fn headline(&self, diagnostic: &Diagnostic) -> String {
        format!(
            "{}: {}: {}",
            self.place(diagnostic),
            diagnostic.severity.as_str(),
            Self::subject(diagnostic)
        )
    }

    /// Where a diagnostic's value came from: `FILE:LINE:COL`, `FILE` or
    /// `environment variable NAME`.
    pub fn place(&self, diagnostic: &Diagnostic) -> String {
        match (&diagnostic.location, &diagnostic.env) {
            (_, Some(variable)) => format!("environment variable {variable}"),
            (Some(location), None) => format!("{}:{}:{}", self.file, location.line, location.column),
            (None, None) => self.file.clone(),
        }
    }

    /// `KEY: MESSAGE`, or the message alone when it is about no key.
    pub fn subject(diagnostic: &Diagnostic) -> String {
        if diagnostic.key.is_empty() {
            diagnostic.message.clone()
        } else {
            format!("{}: {}", diagnostic.key, diagnostic.message)
        }
    }
}

/// Without the file's text, which may hold literal secrets.
impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("file", &self.file)
            .field("diagnostics", &self.diagnostics)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

/// One line per diagnostic, with what was found and expected: for logs and `Result` errors.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, diagnostic) in self.diagnostics.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&self.headline(diagnostic))?;
            if let Some(found) = &diagnostic.found {
                write!(f, " (found {found})")?;
            }
            if let Some(expected) = &diagnostic.expected {
                write!(f, "; expected {expected}")?;
            }
            if let Some(suggestion) = &diagnostic.suggestion {
                write!(f, "; did you mean `{suggestion}`?")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters_from_one() {
        let text = "a = 1\nname = \"é\"\nb = 2\n";
        let location = Location::of(text, 14..15);
        assert_eq!((location.line, location.column), (2, 9));
        assert_eq!(Location::of(text, 0..1).line, 1);
        assert_eq!(Location::of(text, 999..1000).line, 4, "past the end is the last line");
    }

    #[test]
    fn headlines_name_the_place_the_key_and_the_problem() {
        let mut report = Report {
            file: "bad.toml".into(),
            ..Report::default()
        };
        let mut in_file = Diagnostic::new(Severity::Error, "sources[0].verify", "unknown value");
        in_file.location = Some(Location::of("x\nverify = 1", 11..12));
        in_file.suggestion = Some("github".into());
        let mut from_env = Diagnostic::new(Severity::Warning, "ingest.listen", "odd");
        from_env.env = Some("HOOKGATE_INGEST__LISTEN".into());
        report.diagnostics = vec![from_env, in_file];
        report.sort();
        assert_eq!(
            report.to_string(),
            "bad.toml:2:10: error: sources[0].verify: unknown value; did you mean `github`?\n\
             environment variable HOOKGATE_INGEST__LISTEN: warning: ingest.listen: odd"
        );
        assert_eq!((report.count(Severity::Error), report.has_errors()), (1, true));
    }
}
