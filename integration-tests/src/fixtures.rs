//! Istio config the tests serve, written as Istio's egress tasks write it,
//! and the repository's example MeshConfig files.

use std::path::{Path, PathBuf};

/// Istio's "Access an external HTTP service" ServiceEntry.
pub const HTTPBIN_SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
";

/// Istio's TLS origination task's starting point, trimmed to its TLS port:
/// `edition.cnn.com:443` passed through by SNI.
pub const CNN_TLS_SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
";

/// `examples/mesh-config/<name>.yaml` (`allow-any`, `registry-only`).
pub fn mesh_config(name: &str) -> PathBuf {
    repo_root()
        .join("examples/mesh-config")
        .join(format!("{name}.yaml"))
}

/// `examples/mesh`: the egress walkthrough's config as one directory.
pub fn example_mesh() -> PathBuf {
    repo_root().join("examples/mesh")
}

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
