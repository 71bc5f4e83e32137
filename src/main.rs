//! The `hookgate` binary: parses the command line; everything else lives in the library.

use clap::Parser;

/// mimalloc as the global allocator: the request path allocates and frees
/// from many threads, which glibc's malloc serves more slowly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hookgate::cli::Cli::parse().run()
}
