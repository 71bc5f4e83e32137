//! Reading a configuration for `serve`, `check-config` and `send`: the file
//! and the environment are layered, parsed leniently so that one run names
//! every problem with its place, and what parsed is handed to the checks.

use std::path::Path;

use super::diagnostics::{ConfigIssue, Diagnostic, Override, Report};
use super::explain::{explain, missing_key, reveal};
use super::keypath::KeyPath;
use super::layers::{Layers, Part};
use super::tolerant::{deserialize_all, Positions};
use super::{Config, SourceConfig};

/// Name shown for the configuration when there is no file.
const NO_FILE: &str = "environment";
/// Name shown for TOML text that did not come from a file.
const TEXT: &str = "config";

/// A configuration as read: what parsed, and every problem found so far.
pub struct Loaded {
    /// The configuration, when its shape parsed; values that did not fit are
    /// replaced by their defaults, so it is only fit to run without errors.
    pub config: Option<Config>,
    /// Every problem found, in file order.
    pub report: Report,
    layers: Layers,
    removed: Vec<KeyPath>,
    positions: Positions,
}

/// Why a configuration could not be loaded: every problem found in it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub Report);

impl Config {
    /// Reads a file (or none: the built-in demo setup) with environment overrides on top.
    pub fn read(path: Option<&Path>) -> Loaded {
        let Some(path) = path else {
            let mut loaded = Loaded::parse(NO_FILE, Layers::default().with_env(environment()));
            if let Some(config) = loaded.config.as_mut().filter(|c| c.sources.is_empty()) {
                config.sources.push(SourceConfig::demo());
            }
            return loaded;
        };
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Loaded::parse(&file, Layers::from_text(&text).with_env(environment())),
            Err(error) => Loaded::unreadable(file, error),
        }
    }

    /// Like [`Config::read`], but any problem in the shape of the values is an error.
    pub fn load(path: Option<&Path>) -> Result<Self, LoadError> {
        Self::read(path).into_config()
    }

    /// Parses TOML text without environment overrides (tests, benches).
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        Loaded::parse(TEXT, Layers::from_text(text)).into_config()
    }
}

/// The process environment; variables that are not UTF-8 cannot name a key and are skipped.
fn environment() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
}

impl Loaded {
    fn parse(file: &str, layers: Layers) -> Self {
        let attempt = deserialize_all::<Config>(layers.root.clone());
        let mut report = Report {
            file: file.to_owned(),
            text: layers.text.clone(),
            diagnostics: layers.problems.clone(),
            overrides: layers
                .overrides
                .iter()
                .map(|(key, variable)| Override {
                    key: key.to_string(),
                    variable: variable.clone(),
                })
                .collect(),
        };
        for failure in &attempt.failures {
            // A required key may be on a line blanked for a syntax error.
            if layers.damaged() && missing_key(&failure.message).is_some() {
                continue;
            }
            let (mut diagnostic, part) = explain(&failure.path, &failure.message, layers.value(&failure.path));
            layers.place(&mut diagnostic, &failure.path, part);
            report.diagnostics.push(diagnostic);
        }
        report.sort();
        Self {
            config: attempt.value,
            report,
            layers,
            removed: attempt.removed,
            positions: attempt.positions,
        }
    }

    fn unreadable(file: String, error: std::io::Error) -> Self {
        let problem = Diagnostic::new(super::Severity::Error, "", format!("cannot read the file: {error}"));
        Self {
            config: None,
            report: Report {
                file,
                diagnostics: vec![problem],
                ..Report::default()
            },
            layers: Layers::default(),
            removed: Vec::new(),
            positions: Positions::default(),
        }
    }

    /// Adds the findings of the checks on `config`, placed in the file.
    /// Findings that other problems explain are left out: about a value that
    /// failed to parse (and so holds its default), or about a key the file
    /// lacks when lines were blanked for syntax errors.
    pub fn add_issues(&mut self, issues: impl IntoIterator<Item = ConfigIssue>) {
        for issue in issues {
            let parsed = KeyPath::parse(&issue.key);
            let original = parsed.as_ref().map(|path| self.positions.original(path));
            if original.as_ref().is_some_and(|path| self.explained(path)) {
                continue;
            }
            let key = match &original {
                Some(path) if parsed.as_ref() != Some(path) => path.to_string(),
                _ => issue.key,
            };
            let mut diagnostic = Diagnostic::new(issue.severity, key, issue.message);
            if let Some(path) = &original {
                reveal(&mut diagnostic, path, self.layers.value(path));
                self.layers.place(&mut diagnostic, path, Part::Value);
            }
            self.report.diagnostics.push(diagnostic);
        }
        self.report.sort();
    }

    fn explained(&self, path: &KeyPath) -> bool {
        self.removed.iter().any(|removed| removed.related(path))
            || (self.layers.damaged() && self.layers.value(path).is_none())
    }

    /// The configuration, when nothing found so far is an error.
    pub fn into_config(self) -> Result<Config, LoadError> {
        match self.config {
            Some(config) if !self.report.has_errors() => Ok(config),
            _ => Err(LoadError(self.report)),
        }
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn loaded(text: &str) -> Loaded {
        let mut loaded = Loaded::parse("t.toml", Layers::from_text(text));
        let issues = loaded.config.as_ref().map(Config::validate).unwrap_or_default();
        loaded.add_issues(issues);
        loaded
    }

    fn keys(loaded: &Loaded) -> Vec<&str> {
        loaded.report.diagnostics.iter().map(|d| d.key.as_str()).collect()
    }

    #[test]
    fn checks_after_a_source_that_failed_name_the_files_positions() {
        let found = loaded(
            "[[sources]]\nverify = \"none\"\n\
             [[sources]]\nname = \"b c\"\nverify = \"none\"\n",
        );
        assert_eq!(
            keys(&found),
            ["sources[0].name", "sources[1].name", "sources[1].verify"],
            "{:#?}",
            found.report
        );
        let renamed = &found.report.diagnostics[1];
        assert!(renamed.message.starts_with("must be 1-64 characters"), "{renamed:?}");
        assert_eq!(renamed.location.as_ref().unwrap().line, 4);
    }

    #[test]
    fn checks_about_values_that_failed_to_parse_are_left_out() {
        let found = loaded(
            "[ingest]\nmax_body_bytes = -1\n[query]\nlisten = \"0.0.0.0:1\"\n\
             [[query.tokens]]\ntoken = \"env:HOOKGATE_LOAD_TEST_UNSET\"\nscopes = [\"read\"]\n\
             [[sources]]\nname = \"a\"\nverify = \"github\"\nsecrets = [\"env:HOOKGATE_LOAD_TEST_UNSET\"]\n",
        );
        assert_eq!(
            keys(&found),
            [
                "ingest.max_body_bytes",
                "query.tokens[0].token",
                "sources[0].secrets[0]"
            ],
            "no `query.tokens` (a token is required) nor `sources[0].secrets` (one is required): {:#?}",
            found.report
        );
    }

    #[test]
    fn from_toml_fails_with_every_problem_and_load_adds_the_demo_source() {
        let error = Config::from_toml("[ingest]\nlisten = 1\ndeadline = \"x\"\n").unwrap_err();
        let text = error.to_string();
        assert!(text.contains("config:2:10: error: ingest.listen"), "{text}");
        assert!(text.contains("config:3:12: error: ingest.deadline"), "{text}");
        assert_eq!(error.0.count(Severity::Error), 2);
        let demo = Config::load(None).unwrap();
        assert_eq!(demo.sources[0].name, crate::config::DEMO_SOURCE);
    }

    #[test]
    fn an_unreadable_file_is_one_error_naming_it() {
        let loaded = Config::read(Some(Path::new("/nonexistent/hookgate.toml")));
        assert!(loaded.config.is_none());
        assert_eq!(
            loaded.report.to_string(),
            "/nonexistent/hookgate.toml: error: cannot read the file: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn debug_output_shows_no_file_text() {
        let shown = format!(
            "{:?}",
            loaded("[[sources]]\nname = \"a\"\nverify = \"github\"\nsecrets = [\"hunter2\"]\n")
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
