//! Compiles proto/ with a pure-Rust protobuf compiler (protox), so building
//! hookgate needs no protoc on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/hookgate/v1/envelope.proto"];
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds migrations/ at build time and does not notice new files by itself.
    println!("cargo:rerun-if-changed=migrations");
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().bytes(["."]).compile_fds(descriptors)?;
    Ok(())
}
