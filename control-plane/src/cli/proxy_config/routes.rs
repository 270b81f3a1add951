//! `proxy-config routes`: one row per route of each virtual host, with the
//! route configuration's name, the host's name and domains, the path match
//! and the VirtualService behind it, as istioctl prints it.

use clap::Args;
use proto::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};

use super::listeners::describe_path;
use super::{Sent, istio_config_name};

pub const HEADER: [&str; 5] = ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"];

/// istioctl's route filter.
#[derive(Args, Default)]
pub struct RouteFilter {
    /// Only the route configuration of this name (e.g. `80`, `http.8080`).
    #[arg(long)]
    pub name: Option<String>,
}

impl RouteFilter {
    pub fn keep(&self, route: &RouteConfiguration) -> bool {
        self.name.as_ref().is_none_or(|n| route.name == *n)
    }
}

/// The rows, route configurations by name (numeric names in port order first).
pub fn rows(routes: &[Sent<RouteConfiguration>]) -> Vec<Vec<String>> {
    let mut sorted: Vec<&RouteConfiguration> = routes.iter().map(|s| &s.message).collect();
    sorted.sort_by_key(|r| {
        (
            r.name.parse::<u32>().map_err(|_| r.name.clone()),
            r.name.clone(),
        )
    });
    let mut rows = Vec::new();
    for config in sorted {
        for host in &config.virtual_hosts {
            for route in &host.routes {
                rows.push(vec![
                    config.name.clone(),
                    host.name.clone(),
                    describe_domains(host),
                    describe_path(route.r#match.as_ref()),
                    istio_config_name(route.metadata.as_ref()),
                ]);
            }
        }
    }
    rows
}

/// The host's domains as istioctl sums them up: the shortest that does not
/// start with a digit (no `host:port` or IP variants).
fn describe_domains(host: &VirtualHost) -> String {
    let Some(first) = host.domains.first() else {
        return String::new();
    };
    host.domains
        .iter()
        .filter(|d| !d.starts_with(|c: char| c.is_ascii_digit()))
        .min_by_key(|d| d.len())
        .unwrap_or(first)
        .clone()
}
