//! The `hookgate` binary: parses the command line; everything else lives in the library.

use clap::Parser;

/// mimalloc instead of the system allocator: the request path allocates
/// small, short-lived buffers on many threads, where it costs less CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hookgate::cli::Cli::parse().run()
}
