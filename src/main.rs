//! The `hookgate` binary: parses the command line; everything else lives in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    hookgate::cli::Cli::parse().run()
}
