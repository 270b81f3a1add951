//! The benchmark's mesh, written as Istio YAML into a config directory:
//! `SERVICES` ServiceEntries (HTTP 80 and HTTPS 443, DNS), a VirtualService,
//! and one more ServiceEntry whose DNS endpoint the benchmark changes.

use std::path::Path;

/// The file the benchmark rewrites: one ServiceEntry, one port.
pub const CHANGED_FILE: &str = "changed.yaml";
/// The one cluster a change of [`CHANGED_FILE`] changes.
pub const CHANGED_CLUSTER: &str = "outbound|80||changed.example.com";

/// ServiceEntry `ext-<i>`: `service-<i>.example.com` on 80 (HTTP) and 443 (HTTPS).
pub fn service_entry_yaml(i: usize) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ext-{i}
  namespace: default
spec:
  hosts: [service-{i}.example.com]
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  - {{number: 443, name: https, protocol: HTTPS}}
  location: MESH_EXTERNAL
  resolution: DNS
"
    )
}

/// The ServiceEntry that changes: its DNS endpoint is `backend-<revision>`.
pub fn changed_yaml(revision: u32) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: changed
  namespace: default
spec:
  hosts: [changed.example.com]
  ports:
  - {{number: 80, name: http, protocol: HTTP}}
  location: MESH_EXTERNAL
  resolution: DNS
  endpoints:
  - address: backend-{revision}.example.net
"
    )
}

const VIRTUAL_SERVICE: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: service-0
  namespace: default
spec:
  hosts: [service-0.example.com]
  http:
  - timeout: 3s
    route:
    - destination: {host: service-0.example.com}
";

/// Writes the mesh with `services` ServiceEntries into `dir`, the changing
/// one at revision 1.
pub fn write(dir: &Path, services: usize) -> std::io::Result<()> {
    let mut entries = String::new();
    for i in 0..services {
        if i > 0 {
            entries.push_str("---\n");
        }
        entries.push_str(&service_entry_yaml(i));
    }
    std::fs::write(dir.join("services.yaml"), entries)?;
    std::fs::write(dir.join("routes.yaml"), VIRTUAL_SERVICE)?;
    std::fs::write(dir.join(CHANGED_FILE), changed_yaml(1))
}

/// Rewrites the changing ServiceEntry at `revision`, as an editor saves it.
pub fn change(dir: &Path, revision: u32) -> std::io::Result<()> {
    std::fs::write(dir.join(CHANGED_FILE), changed_yaml(revision))
}

/// A one-line summary of a mesh, for the figures.
pub fn describe(services: usize) -> String {
    format!("{services} ServiceEntries (HTTP 80 + HTTPS 443, DNS) + 1 VirtualService")
}
