//! The agent's HTTP ports and the paths each serves: the admin interface
//! (Envoy's 15000, every path), Envoy's Prometheus listener (15090,
//! `/stats/prometheus` only), pilot-agent's status port (15020, the
//! merged `/stats/prometheus` and `/healthz/ready`) and Istio's health port
//! (15021, `/healthz/ready` only).

/// Which of the agent's HTTP ports a listener is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The admin interface: every admin path.
    Admin,
    /// Envoy's `prometheus_stats` listener, as Istio's bootstrap adds it.
    Metrics,
    /// pilot-agent's status port: the merged scrape and readiness.
    Status,
    /// The health listener Istio's bootstrap adds on 15021, which forwards
    /// `/healthz/ready` to the status port: what a load balancer or the
    /// kubelet probes.
    Health,
}

impl Surface {
    /// Whether this port answers `path` (others get a 404).
    pub fn serves(self, path: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Metrics => path == "/stats/prometheus",
            Self::Status => matches!(path, "/stats/prometheus" | "/healthz/ready"),
            Self::Health => path == "/healthz/ready",
        }
    }

    /// The name its log lines carry.
    pub fn name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Metrics => "metrics",
            Self::Status => "status",
            Self::Health => "health",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Surface;

    #[test]
    fn each_port_serves_istios_paths_only() {
        assert!(Surface::Admin.serves("/config_dump"));
        assert!(Surface::Metrics.serves("/stats/prometheus"));
        assert!(!Surface::Metrics.serves("/config_dump"));
        assert!(!Surface::Metrics.serves("/healthz/ready"));
        assert!(!Surface::Metrics.serves("/quitquitquit"));
        assert!(Surface::Status.serves("/stats/prometheus"));
        assert!(Surface::Status.serves("/healthz/ready"));
        assert!(!Surface::Status.serves("/stats"));
        assert!(!Surface::Status.serves("/quitquitquit"));
        assert!(Surface::Health.serves("/healthz/ready"));
        assert!(!Surface::Health.serves("/stats/prometheus"));
        assert!(!Surface::Health.serves("/ready"));
    }
}
