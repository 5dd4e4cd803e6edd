//! Compiles SpiceDB's v1 API definitions (`src/server/proto/`) for `purview serve`, with the
//! pure-Rust `protox` compiler (no system `protoc`), when the `server` feature is on.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "server")]
    {
        println!("cargo:rerun-if-changed=src/server/proto");
        let files = [
            "authzed/api/v1/permission_service.proto",
            "authzed/api/v1/schema_service.proto",
            "authzed/api/v1/watch_service.proto",
        ];
        let fds = protox::compile(files, ["src/server/proto"])?;
        tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    }
    Ok(())
}
