//! The command line: `serve`, `check-config` and `send`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::Role;
use crate::config::{Config, ConfigIssue};
use crate::telemetry::LogFormat;

mod send;

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
    /// Validate a configuration file and explain every problem in it.
    CheckConfig {
        /// Configuration file (TOML).
        #[arg(env = "HOOKGATE_CONFIG")]
        config: PathBuf,
    },
    /// Sign a sample webhook for a configured source and POST it, as the provider would.
    Send(send::SendArgs),
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
            Command::CheckConfig { config } => check_config(&config),
            Command::Send(args) => send::run(args),
        }
    }
}

fn serve(path: Option<PathBuf>, role: Role, log_format: LogFormat) -> ExitCode {
    crate::telemetry::init_logging(log_format);
    let config = match Config::load(path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::from(2);
        }
    };
    if path.is_none() {
        tracing::warn!("no config file: serving the single UNVERIFIED source `demo` at /webhooks/demo (anyone who can reach the port can post)");
    }
    for issue in crate::app::config_issues(&config) {
        tracing::warn!("config {issue}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::app::run(config, role, crate::shutdown::os_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(Some(path)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let issues = crate::app::config_issues(&config);
    print_issues(&issues);
    let errors = issues
        .iter()
        .filter(|i| i.severity == crate::config::Severity::Error)
        .count();
    if errors > 0 {
        eprintln!("{}: {errors} error(s); hookgate would refuse to start", path.display());
        return ExitCode::from(2);
    }
    println!(
        "{}: OK ({} sources, {} warning(s))",
        path.display(),
        config.sources.len(),
        issues.len()
    );
    ExitCode::SUCCESS
}

fn print_issues(issues: &[ConfigIssue]) {
    for issue in issues {
        eprintln!("{issue}");
    }
}
