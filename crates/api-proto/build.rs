//! Compiles `proto/tessera/v1/signer.proto` with protox (no system `protoc`) and emits the file
//! descriptor set used by the reflection service.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto");
    let proto = proto_root.join("tessera/v1/signer.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
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
    Ok(())
}
