//! Well-known ports of the mesh, as Istio assigns them.

/// Plaintext xDS on the control plane.
pub const XDS_PLAINTEXT: u16 = 15010;
/// xDS and the CA over TLS on the control plane (istiod's secure port).
pub const XDS_TLS: u16 = 15012;
/// Control-plane Prometheus metrics (istiod's monitoring port).
pub const CONTROL_PLANE_METRICS: u16 = 15014;
/// The agent's admin interface.
pub const AGENT_ADMIN: u16 = 15000;
/// Captured outbound traffic.
pub const OUTBOUND_CAPTURE: u16 = 15001;
/// Captured inbound traffic.
pub const INBOUND_CAPTURE: u16 = 15006;
/// The agent's DNS proxy, UDP and TCP (pilot-agent's DNS listener).
pub const DNS_PROXY: u16 = 15053;
/// pilot-agent's status port: the merged Prometheus scrape and readiness.
pub const AGENT_STATUS: u16 = 15020;
/// Health checks.
pub const HEALTH: u16 = 15021;
/// Prometheus metrics of a proxy.
pub const PROXY_METRICS: u16 = 15090;
