//! Compiles `proto/tessera/v1/signer.proto` and `proto/tessera/peer/v1/peer.proto` with protox (no system `protoc`) and emits the file
//! descriptor set used by the reflection service.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let proto = proto_root.join("tessera/v1/signer.proto");
    let peer = proto_root.join("tessera/peer/v1/peer.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    println!("cargo:rerun-if-changed={}", peer.display());
    let fds = protox::compile([&proto], [&proto_root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tessera_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Carries a secret key: its Debug is written by hand, redacted (src/lib.rs).
        .skip_debug(["tessera.v1.ImportKeyRequest"])
        .compile_fds(fds)?;
    // The node-to-node service: its own descriptor set, not served by the public API's
    // reflection.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile([&peer], [&proto_root])?)?;
    Ok(())
}
