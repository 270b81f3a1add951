//! Listener stats as Envoy names them: per listener (`listener.<address>.`,
//! Prometheus label `envoy_listener_address`) the connections open
//! (`downstream_cx_active`), those whose listener filters timed out
//! (`downstream_pre_cx_timeout`), and those closed at once over the
//! listener's connection limit (`downstream_cx_overflow`) or the global one
//! (`downstream_global_cx_overflow`); and the TLS inspector's
//! (`tls_inspector.*`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use dashmap::DashMap;

/// The counters of one listener.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// A gauge: connections accepted and not yet closed.
    pub cx_active: AtomicU64,
    pub pre_cx_timeout: AtomicU64,
    /// Closed at once: the listener's connection limit was reached.
    pub cx_overflow: AtomicU64,
    /// Closed at once: the global connection limit was reached, or file
    /// descriptors ran out.
    pub global_cx_overflow: AtomicU64,
}

/// The TLS inspector's counters, over every listener.
#[derive(Debug, Default)]
pub struct TlsInspectorStats {
    /// The client closed before its ClientHello was complete.
    pub connection_closed: AtomicU64,
    pub tls_found: AtomicU64,
    pub tls_not_found: AtomicU64,
    pub sni_found: AtomicU64,
    pub sni_not_found: AtomicU64,
}

/// Reads one counter of a listener.
type ReadListener = fn(&ListenerStats) -> u64;
/// Reads one counter of the TLS inspector.
type ReadInspector = fn(&TlsInspectorStats) -> u64;

#[derive(Debug, Default)]
pub struct ListenersStats {
    listeners: DashMap<Arc<str>, Arc<ListenerStats>>,
    pub tls_inspector: TlsInspectorStats,
}

/// A listener's name in Envoy's stats: its address, `:` written `_`
/// (`0.0.0.0_15001`).
pub fn stat_name(address: SocketAddr) -> Arc<str> {
    address.to_string().replace(':', "_").into()
}

impl ListenersStats {
    /// The counters of the listener at `address`.
    pub fn listener(&self, address: SocketAddr) -> Arc<ListenerStats> {
        let name = stat_name(address);
        if let Some(stats) = self.listeners.get(&name) {
            return stats.clone();
        }
        self.listeners.entry(name).or_default().clone()
    }

    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let mut listeners: Vec<_> = self
            .listeners
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        listeners.sort_by(|a, b| a.0.cmp(&b.0));
        let series: [(&str, &str, ReadListener); 4] = [
            ("envoy_listener_downstream_cx_active", "gauge", |s| {
                s.cx_active.load(Relaxed)
            }),
            ("envoy_listener_downstream_pre_cx_timeout", "counter", |s| {
                s.pre_cx_timeout.load(Relaxed)
            }),
            ("envoy_listener_downstream_cx_overflow", "counter", |s| {
                s.cx_overflow.load(Relaxed)
            }),
            (
                "envoy_listener_downstream_global_cx_overflow",
                "counter",
                |s| s.global_cx_overflow.load(Relaxed),
            ),
        ];
        for (metric, kind, read) in series {
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for (name, stats) in &listeners {
                let _ = writeln!(
                    out,
                    "{metric}{{envoy_listener_address=\"{name}\"}} {}",
                    read(stats)
                );
            }
        }
        let inspector: [(&str, ReadInspector); 5] = [
            ("envoy_tls_inspector_connection_closed", |s| {
                s.connection_closed.load(Relaxed)
            }),
            ("envoy_tls_inspector_tls_found", |s| {
                s.tls_found.load(Relaxed)
            }),
            ("envoy_tls_inspector_tls_not_found", |s| {
                s.tls_not_found.load(Relaxed)
            }),
            ("envoy_tls_inspector_sni_found", |s| {
                s.sni_found.load(Relaxed)
            }),
            ("envoy_tls_inspector_sni_not_found", |s| {
                s.sni_not_found.load(Relaxed)
            }),
        ];
        for (metric, read) in inspector {
            let _ = writeln!(out, "# TYPE {metric} counter");
            let _ = writeln!(out, "{metric} {}", read(&self.tls_inspector));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_named_by_address_as_envoy_names_them() {
        let stats = ListenersStats::default();
        let listener = stats.listener("0.0.0.0:15001".parse().unwrap());
        listener.cx_active.fetch_add(2, Relaxed);
        listener.cx_overflow.fetch_add(4, Relaxed);
        listener.global_cx_overflow.fetch_add(5, Relaxed);
        stats.tls_inspector.connection_closed.fetch_add(3, Relaxed);
        let mut out = String::new();
        stats.render(&mut out);
        for line in [
            "# TYPE envoy_listener_downstream_cx_active gauge",
            "envoy_listener_downstream_cx_active{envoy_listener_address=\"0.0.0.0_15001\"} 2",
            "envoy_listener_downstream_pre_cx_timeout{envoy_listener_address=\"0.0.0.0_15001\"} 0",
            "# TYPE envoy_listener_downstream_cx_overflow counter",
            "envoy_listener_downstream_cx_overflow{envoy_listener_address=\"0.0.0.0_15001\"} 4",
            "envoy_listener_downstream_global_cx_overflow{envoy_listener_address=\"0.0.0.0_15001\"} 5",
            "envoy_tls_inspector_connection_closed 3",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
        }
    }
}
