//! Copies the Envoy API descriptor set that the `envoy-types` package ships
//! (its generated `types.bin`) into OUT_DIR, so this crate can embed it for
//! gRPC reflection and protobuf JSON. The package is located through
//! `cargo metadata`, which works for registry, vendored and git sources alike.
//!
//! Compiles `protos/ca.proto` (Istio's certificate API) with protox, in pure
//! Rust, into prost types and a tonic client and server, and writes its own
//! descriptor set beside the Envoy one for reflection.
//!
//! Compiles `protos/nds.proto` (Istio's name table, sent over NDS) the same
//! way, without a service.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").expect("TARGET");
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &target,
        ])
        .current_dir(&manifest_dir)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let manifest = metadata["packages"]
        .as_array()
        .and_then(|packages| {
            packages
                .iter()
                .find(|p| p["name"] == "envoy-types")
                .and_then(|p| p["manifest_path"].as_str())
        })
        .expect("envoy-types is a dependency of this crate");
    let descriptor = PathBuf::from(manifest)
        .parent()
        .expect("manifest has a parent directory")
        .join("src/generated/types.bin");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("envoy_descriptor.bin");
    std::fs::copy(&descriptor, &out)
        .unwrap_or_else(|e| panic!("copy {}: {e}", descriptor.display()));
    println!("cargo:rerun-if-changed={}", descriptor.display());
    println!("cargo:rerun-if-changed=build.rs");
    compile_ca_api();
    compile_name_table();
}

/// The Istio certificate API: generated code, and a descriptor set of its
/// one file (its import, `google/protobuf/struct.proto`, is in the Envoy set).
fn compile_ca_api() {
    use prost::Message;
    const CA_PROTO: &str = "protos/ca.proto";
    println!("cargo:rerun-if-changed={CA_PROTO}");
    let mut files = protox::compile([CA_PROTO], ["protos"]).expect("compile protos/ca.proto");
    tonic_prost_build::configure()
        .extern_path(
            ".google.protobuf.Struct",
            "::envoy_types::pb::google::protobuf::Struct",
        )
        .compile_fds(files.clone())
        .expect("generate the certificate API");
    files.file.retain(|f| f.name() == "ca.proto");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ca_descriptor.bin");
    std::fs::write(&out, files.encode_to_vec())
        .unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}

/// Istio's name table (NDS): generated types, with ordered maps so that one
/// table always encodes to the same bytes (its xDS version is a hash of
/// them), and a descriptor set of its one file for reflection.
fn compile_name_table() {
    use prost::Message;
    const NDS_PROTO: &str = "protos/nds.proto";
    println!("cargo:rerun-if-changed={NDS_PROTO}");
    let files = protox::compile([NDS_PROTO], ["protos"]).expect("compile protos/nds.proto");
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .btree_map(".")
        .compile_fds(files.clone())
        .expect("generate the name table");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("nds_descriptor.bin");
    std::fs::write(&out, files.encode_to_vec())
        .unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
