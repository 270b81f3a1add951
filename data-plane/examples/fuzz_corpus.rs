//! Writes the fuzz targets' starting corpus under `fuzz/corpus/`
//! (`cargo run -p data-plane --example fuzz_corpus`): real
//! ClientHellos (rustls', with and without SNI, whole and cut) for `sni`,
//! and every resource of the control plane's golden files for
//! `xds_convert` (its first byte picks the type, as the target reads it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use serde_json::Value;

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let sni = write_sni_seeds(&fuzz.join("corpus/sni"));
    let xds = write_xds_seeds(
        &fuzz.join("../control-plane/tests/golden"),
        &fuzz.join("corpus/xds_convert"),
    );
    println!("wrote {sni} sni seeds and {xds} xds_convert seeds");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// The first flight of a rustls client to `server_name`.
fn client_hello(server_name: &str, alpn: &[&[u8]]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .expect("a valid server name");
    let mut client =
        rustls::ClientConnection::new(Arc::new(config), name).expect("a client connection");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("the ClientHello");
    hello
}

fn write_sni_seeds(dir: &Path) -> usize {
    let hellos = [
        client_hello("edition.cnn.com", &[b"h2", b"http/1.1"]),
        client_hello("www.baidu.com", &[]),
        // An IP address: rustls sends no SNI.
        client_hello("10.0.0.1", &[]),
    ];
    let mut written = 0;
    for (i, hello) in hellos.iter().enumerate() {
        for cut in [hello.len(), hello.len() / 2, 5] {
            write(dir, &format!("hello-{i}-{cut}"), &hello[..cut]);
            written += 1;
        }
    }
    write(dir, "http", b"GET / HTTP/1.1\r\nhost: a\r\n\r\n");
    written + 1
}

fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read the golden directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
}

/// `(golden key, type name, the target's selector byte)`.
const KINDS: [(&str, &str, u8); 4] = [
    ("listeners", "envoy.config.listener.v3.Listener", 0),
    ("clusters", "envoy.config.cluster.v3.Cluster", 1),
    ("routes", "envoy.config.route.v3.RouteConfiguration", 2),
    (
        "endpoints",
        "envoy.config.endpoint.v3.ClusterLoadAssignment",
        3,
    ),
];

fn write_xds_seeds(golden: &Path, dir: &Path) -> usize {
    let mut files = Vec::new();
    json_files(golden, &mut files);
    let mut written = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a golden file");
        let json: Value = serde_json::from_str(&text).expect("golden JSON");
        for (key, type_name, selector) in KINDS {
            for (i, resource) in json[key].as_array().into_iter().flatten().enumerate() {
                let bytes = encoded(type_name, resource);
                let stem = file
                    .strip_prefix(golden)
                    .unwrap_or(&file)
                    .with_extension("")
                    .to_string_lossy()
                    .replace('/', "-");
                let mut seed = vec![selector];
                seed.extend(bytes);
                write(dir, &format!("{stem}-{key}-{i}"), &seed);
                written += 1;
            }
        }
    }
    written
}

fn encoded(type_name: &str, json: &Value) -> Vec<u8> {
    use proto::pb::envoy::config;
    match type_name {
        "envoy.config.listener.v3.Listener" => {
            decode::<config::listener::v3::Listener>(type_name, json).encode_to_vec()
        }
        "envoy.config.cluster.v3.Cluster" => {
            decode::<config::cluster::v3::Cluster>(type_name, json).encode_to_vec()
        }
        "envoy.config.route.v3.RouteConfiguration" => {
            decode::<config::route::v3::RouteConfiguration>(type_name, json).encode_to_vec()
        }
        _ => decode::<config::endpoint::v3::ClusterLoadAssignment>(type_name, json).encode_to_vec(),
    }
}

fn decode<M: Message + Default>(type_name: &str, json: &Value) -> M {
    proto::from_json(type_name, json).expect("a golden resource decodes")
}
