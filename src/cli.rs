//! The command line: `serve`, `check-config` and `send`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::Role;
use crate::config::{Config, Loaded};
use crate::telemetry::LogFormat;

mod render;
mod send;
mod summary;

/// How long `serve` waits, once it is done, for work left on the runtime's blocking pool.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);
/// Name of the main runtime's threads (ingest, metrics; the history's are `hg-history` beside ingest).
const MAIN_THREADS: &str = "hg-main";

/// hookgate: verified, deduplicated webhooks into Kafka, and their history.
#[derive(Debug, Parser)]
#[command(name = "hookgate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway. Without a config file: one unverified source `demo`,
    /// the embedded in-memory Kafka broker and a SQLite history file.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short, env = "HOOKGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Which parts to run: all, ingest or query.
        #[arg(long, default_value = "all")]
        role: Role,
        /// Log line format: text or json.
        #[arg(long, default_value = "text", value_parser = parse_log_format)]
        log_format: LogFormat,
    },
    /// Validate a configuration file and explain every problem in it, with
    /// its line; exit 2 on errors. Valid: a summary of what would run.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(env = "HOOKGATE_CONFIG")]
        config: PathBuf,
        /// Output: human (compiler style, coloured on a terminal) or json (for CI).
        #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
        format: ReportFormat,
    },
    /// Sign a sample webhook for a configured source and POST it, as the provider would.
    Send(send::SendArgs),
}

/// How `check-config` writes its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// `FILE:LINE:COL: error: ...` with the line and a caret, on stderr; the summary on stdout.
    Human,
    /// One JSON document on stdout.
    Json,
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown log format `{other}`: expected text or json")),
    }
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve {
                config,
                role,
                log_format,
            } => serve(config, role, log_format),
            Command::CheckConfig { config, format } => check_config(&config, format),
            Command::Send(args) => send::run(args),
        }
    }
}

/// Reads a configuration and runs every check on what parsed
/// (`app::config_issues`, and those of the role `serve` runs).
fn read_and_check(path: Option<&Path>, role: Option<Role>) -> Loaded {
    let mut loaded = Config::read(path);
    if let Some(config) = &loaded.config {
        let mut issues = crate::app::config_issues(config);
        if let Some(role) = role {
            issues.extend(crate::app::role_issues(config, role));
        }
        loaded.add_issues(issues);
    }
    loaded
}

/// The configuration `serve` runs with, or the exit code once the report
/// of why it cannot run has been shown.
fn config_to_serve(path: Option<&Path>, role: Role, log_format: LogFormat) -> Result<Config, ExitCode> {
    let loaded = read_and_check(path, Some(role));
    let report = &loaded.report;
    if report.has_errors() {
        match log_format {
            LogFormat::Text => {
                let _ = render::human(report, &mut anstream::stderr());
            }
            LogFormat::Json => {
                for diagnostic in &report.diagnostics {
                    tracing::error!("config {}", report.headline(diagnostic));
                }
            }
        }
        return Err(ExitCode::from(2));
    }
    for diagnostic in &report.diagnostics {
        tracing::warn!("config {}", report.headline(diagnostic));
    }
    loaded.config.ok_or(ExitCode::from(2))
}

fn serve(path: Option<PathBuf>, role: Role, log_format: LogFormat) -> ExitCode {
    crate::telemetry::init_logging(log_format);
    let config = match config_to_serve(path.as_deref(), role, log_format) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if path.is_none() {
        tracing::warn!("no config file: serving the single UNVERIFIED source `demo` at /webhooks/demo (anyone who can reach the port can post)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(MAIN_THREADS)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(crate::app::run(config, role, crate::shutdown::os_signal()));
    // Whatever still runs on the blocking pool (a start-up cut short may
    // leave a metadata request behind) must not hold the exit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path, format: ReportFormat) -> ExitCode {
    let loaded = read_and_check(Some(path), None);
    let report = &loaded.report;
    let summary = match (&loaded.config, report.has_errors()) {
        (Some(config), false) => Some(summary::Summary::of(config, report)),
        _ => None,
    };
    let written = match format {
        ReportFormat::Json => render::json(report, summary.as_ref(), &mut std::io::stdout()),
        ReportFormat::Human => render::human(report, &mut anstream::stderr())
            .and_then(|()| summary.map_or(Ok(()), |s| s.write(report, &mut anstream::stdout()))),
    };
    match (report.has_errors(), written) {
        (true, _) => ExitCode::from(2),
        (false, Ok(())) => ExitCode::SUCCESS,
        (false, Err(_)) => ExitCode::FAILURE,
    }
}
