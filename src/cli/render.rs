//! How `check-config` and a refusing `serve` show a configuration report:
//! in the style of compilers (`bad.toml:3:10: error: KEY: MESSAGE`, the line,
//! a caret under the value, then what was expected and a suggestion), in
//! colour on a terminal only (the caller's anstream stream strips it
//! elsewhere and honours NO_COLOR), or as one JSON document for CI pipelines.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::summary::Summary;
use crate::config::{Diagnostic, Location, Override, Report, Severity};

const BOLD: Style = Style::new().bold();
const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const GUTTER: Style = AnsiColor::Blue.on_default().bold();
const HELP: Style = AnsiColor::Cyan.on_default().bold();

/// Every diagnostic, then a line counting them when any is an error.
pub(super) fn human(report: &Report, out: &mut impl Write) -> io::Result<()> {
    for diagnostic in &report.diagnostics {
        write_diagnostic(report, diagnostic, out)?;
    }
    if report.has_errors() {
        let (errors, warnings) = (report.count(Severity::Error), report.count(Severity::Warning));
        writeln!(
            out,
            "{BOLD}{}: {} and {}: hookgate would refuse to start{BOLD:#}",
            report.file,
            plural(errors, "error"),
            plural(warnings, "warning")
        )?;
    }
    Ok(())
}

/// "1 error", "3 errors".
pub(super) fn plural(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

fn write_diagnostic(report: &Report, diagnostic: &Diagnostic, out: &mut impl Write) -> io::Result<()> {
    let style = match diagnostic.severity {
        Severity::Error => ERROR,
        Severity::Warning => WARNING,
    };
    writeln!(
        out,
        "{BOLD}{}:{BOLD:#} {style}{}:{style:#} {BOLD}{}{BOLD:#}",
        report.place(diagnostic),
        diagnostic.severity.as_str(),
        Report::subject(diagnostic)
    )?;
    let quoted = match (&diagnostic.location, diagnostic.secret || diagnostic.env.is_some()) {
        (Some(location), false) => write_excerpt(&report.text, location, style, out)?,
        _ => false,
    };
    let gutter = " ".repeat(diagnostic.location.as_ref().map_or(1, |l| digits(l.line)));
    if let Some(found) = diagnostic.found.as_ref().filter(|_| !quoted) {
        writeln!(out, "{gutter} {GUTTER}={GUTTER:#} found: {found}")?;
    }
    if let Some(expected) = &diagnostic.expected {
        writeln!(out, "{gutter} {GUTTER}={GUTTER:#} expected: {expected}")?;
    }
    if let Some(suggestion) = &diagnostic.suggestion {
        writeln!(out, "{gutter} {HELP}= help:{HELP:#} did you mean `{suggestion}`?")?;
    }
    Ok(())
}

/// The line the problem is on with a caret under it; false when the text has no such line.
fn write_excerpt(text: &str, location: &Location, style: Style, out: &mut impl Write) -> io::Result<bool> {
    let Some(line) = text.lines().nth(location.line - 1) else {
        return Ok(false);
    };
    let line_start = text.lines().take(location.line - 1).map(|l| l.len() + 1).sum::<usize>();
    let before: String = line
        .chars()
        .take(location.column - 1)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let span_end = location.span.end.saturating_sub(line_start).min(line.len());
    let span_start = location.span.start.saturating_sub(line_start).min(span_end);
    let width = line.get(span_start..span_end).map_or(1, |s| s.chars().count().max(1));
    let gutter = " ".repeat(digits(location.line));
    writeln!(out, "{gutter} {GUTTER}|{GUTTER:#}")?;
    writeln!(out, "{GUTTER}{} |{GUTTER:#} {line}", location.line)?;
    writeln!(
        out,
        "{gutter} {GUTTER}|{GUTTER:#} {before}{style}{}{style:#}",
        "^".repeat(width)
    )?;
    Ok(true)
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// The JSON document `check-config --format json` prints.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    file: &'a str,
    /// True when hookgate would start.
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: &'a [Diagnostic],
    from_environment: &'a [Override],
    /// The effective configuration, when valid.
    summary: Option<&'a Summary>,
}

/// The report (and, when valid, the summary) as one JSON document.
pub(super) fn json(report: &Report, summary: Option<&Summary>, out: &mut impl Write) -> io::Result<()> {
    let document = JsonReport {
        file: &report.file,
        valid: !report.has_errors(),
        errors: report.count(Severity::Error),
        warnings: report.count(Severity::Warning),
        diagnostics: &report.diagnostics,
        from_environment: &report.overrides,
        summary,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(text: &str, diagnostics: Vec<Diagnostic>) -> Report {
        Report {
            file: "bad.toml".into(),
            text: text.into(),
            diagnostics,
            overrides: Vec::new(),
        }
    }

    fn rendered(report: &Report) -> String {
        let mut out = Vec::new();
        human(report, &mut out).unwrap();
        anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string()
    }

    #[test]
    fn problems_read_like_a_compiler_with_a_caret_under_the_value() {
        let text = "[[sources]]\nname = \"gh\"\n\tverify = \"githubb\"\n";
        let mut diagnostic = Diagnostic::new(Severity::Error, "sources[0].verify", "unknown value `githubb`");
        diagnostic.location = Some(Location::of(text, 34..43));
        diagnostic.found = Some("\"githubb\"".into());
        diagnostic.expected = Some("one of github, none".into());
        diagnostic.suggestion = Some("github".into());
        let shown = rendered(&report(text, vec![diagnostic]));
        let expected = "bad.toml:3:11: error: sources[0].verify: unknown value `githubb`\n  \
                        |\n3 | \tverify = \"githubb\"\n  | \t         ^^^^^^^^^\n  \
                        = expected: one of github, none\n  = help: did you mean `github`?\n\
                        bad.toml: 1 error and 0 warnings: hookgate would refuse to start\n";
        assert_eq!(shown, expected);
    }

    #[test]
    fn environment_values_and_secrets_are_not_quoted_from_the_file() {
        let text = "secrets = [\"hunter2\"]\n";
        let mut literal = Diagnostic::new(Severity::Warning, "sources[0].secrets[0]", "written literally");
        literal.location = Some(Location::of(text, 11..20));
        literal.secret = true;
        let mut from_env = Diagnostic::new(Severity::Error, "ingest.listen", "port 99999 is out of range");
        from_env.env = Some("HOOKGATE_INGEST__LISTEN".into());
        from_env.found = Some("\"127.0.0.1:99999\"".into());
        let shown = rendered(&report(text, vec![literal, from_env]));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("bad.toml:1:12: warning: sources[0].secrets[0]"),
            "{shown}"
        );
        assert!(
            shown.contains("environment variable HOOKGATE_INGEST__LISTEN: error: ingest.listen"),
            "{shown}"
        );
        assert!(shown.contains("= found: \"127.0.0.1:99999\""), "{shown}");
    }

    #[test]
    fn json_counts_and_lists_every_diagnostic() {
        let mut diagnostic = Diagnostic::new(Severity::Error, "ingest.deadline", "not a duration");
        diagnostic.location = Some(Location::of("a\ndeadline = 1", 13..14));
        let mut out = Vec::new();
        json(&report("a\ndeadline = 1", vec![diagnostic]), None, &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["valid"], false);
        assert_eq!(value["errors"], 1);
        assert_eq!(value["diagnostics"][0]["key"], "ingest.deadline");
        assert_eq!(value["diagnostics"][0]["location"]["line"], 2);
        assert_eq!(value["diagnostics"][0]["location"]["column"], 12);
    }
}
