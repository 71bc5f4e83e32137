//! The `hookgate` binary: parses the command line; everything else lives in the library.

use clap::Parser;

mod allocator;

/// mimalloc instead of the system allocator, for the C libraries too (see `allocator`).
#[global_allocator]
static ALLOCATOR: allocator::MiMalloc = allocator::MiMalloc;

fn main() -> std::process::ExitCode {
    hookgate::cli::Cli::parse().run()
}
