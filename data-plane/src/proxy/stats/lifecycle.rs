//! The stats of connections' and listeners' lifecycles, named as Envoy
//! names them: a TCP proxy's timeouts (`tcp.<prefix>.idle_timeout`,
//! `tcp.<prefix>.max_downstream_connection_duration`), the listeners
//! and filter chains draining (`listener_manager.total_listeners_draining`,
//! `listener_manager.total_filter_chains_draining`) and the server's
//! state (`server.state`: 0 live, 1 draining).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use dashmap::DashMap;

/// Counters of one TCP proxy (by stat prefix).
#[derive(Default)]
pub struct TcpProxyStats {
    pub idle_timeout: AtomicU64,
    pub max_downstream_connection_duration: AtomicU64,
}

/// Reads one counter of a TCP proxy.
type ReadCounter = fn(&TcpProxyStats) -> u64;

/// Envoy's `server.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum ServerState {
    Live = 0,
    Draining = 1,
}

#[derive(Default)]
pub struct LifecycleStats {
    tcp: DashMap<Arc<str>, Arc<TcpProxyStats>>,
    listeners_draining: AtomicU64,
    filter_chains_draining: AtomicU64,
    server_state: AtomicU64,
}

impl LifecycleStats {
    /// The counters of the TCP proxy with `prefix`.
    pub fn tcp(&self, prefix: &Arc<str>) -> Arc<TcpProxyStats> {
        if let Some(stats) = self.tcp.get(prefix) {
            return stats.clone();
        }
        self.tcp.entry(prefix.clone()).or_default().clone()
    }

    /// One more listener draining.
    pub fn listener_draining(&self) {
        self.listeners_draining.fetch_add(1, Relaxed);
    }

    /// A draining listener is gone.
    pub fn listener_drained(&self) {
        let _ = self
            .listeners_draining
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    /// One more filter chain draining.
    pub fn filter_chain_draining(&self) {
        self.filter_chains_draining.fetch_add(1, Relaxed);
    }

    /// A draining filter chain is gone.
    pub fn filter_chain_drained(&self) {
        let _ = self
            .filter_chains_draining
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }

    pub fn set_server_state(&self, state: ServerState) {
        self.server_state.store(state as u64, Relaxed);
    }

    pub fn server_state(&self) -> ServerState {
        match self.server_state.load(Relaxed) {
            0 => ServerState::Live,
            _ => ServerState::Draining,
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let mut tcp: Vec<_> = self
            .tcp
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        tcp.sort_by(|a, b| a.0.cmp(&b.0));
        let counters: [(&str, ReadCounter); 2] = [
            ("envoy_tcp_idle_timeout", |s| s.idle_timeout.load(Relaxed)),
            ("envoy_tcp_max_downstream_connection_duration", |s| {
                s.max_downstream_connection_duration.load(Relaxed)
            }),
        ];
        for (metric, read) in counters {
            let _ = writeln!(out, "# TYPE {metric} counter");
            for (prefix, stats) in &tcp {
                let _ = writeln!(
                    out,
                    "{metric}{{envoy_tcp_prefix=\"{prefix}\"}} {}",
                    read(stats)
                );
            }
        }
        let _ = writeln!(
            out,
            "# TYPE envoy_listener_manager_total_listeners_draining gauge\nenvoy_listener_manager_total_listeners_draining {}",
            self.listeners_draining.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE envoy_listener_manager_total_filter_chains_draining gauge\nenvoy_listener_manager_total_filter_chains_draining {}",
            self.filter_chains_draining.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# TYPE envoy_server_state gauge\nenvoy_server_state {}",
            self.server_state.load(Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_envoys_names() {
        let stats = LifecycleStats::default();
        let prefix: Arc<str> = Arc::from("outbound|3306||db.example.com");
        stats.tcp(&prefix).idle_timeout.fetch_add(1, Relaxed);
        stats.listener_draining();
        stats.listener_draining();
        stats.listener_drained();
        stats.filter_chain_draining();
        stats.set_server_state(ServerState::Draining);
        let mut out = String::new();
        stats.render(&mut out);
        assert!(out.contains(
            "envoy_tcp_idle_timeout{envoy_tcp_prefix=\"outbound|3306||db.example.com\"} 1\n"
        ));
        assert!(out.contains(
            "envoy_tcp_max_downstream_connection_duration{envoy_tcp_prefix=\"outbound|3306||db.example.com\"} 0\n"
        ));
        assert!(out.contains("envoy_listener_manager_total_listeners_draining 1\n"));
        assert!(out.contains("envoy_listener_manager_total_filter_chains_draining 1\n"));
        assert!(out.contains("envoy_server_state 1\n"));
    }
}
