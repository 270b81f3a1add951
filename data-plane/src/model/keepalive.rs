//! TCP keepalive on upstream connections (cluster
//! `upstream_connection_options.tcp_keepalive`), as Envoy sets it.

use std::time::Duration;

/// SO_KEEPALIVE on, and each value the cluster gives set on the socket
/// (absent: the kernel's default), as Envoy's socket options do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// TCP_KEEPCNT: unanswered probes before the connection is dropped.
    pub probes: Option<u32>,
    /// TCP_KEEPIDLE: idle time before the first probe (whole seconds).
    pub time: Option<Duration>,
    /// TCP_KEEPINTVL: time between probes (whole seconds).
    pub interval: Option<Duration>,
}
