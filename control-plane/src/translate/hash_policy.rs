//! What a DestinationRule puts on the routes and TCP proxies that reach its
//! clusters, as istiod derives it: the route's `hash_policy` from the
//! destination's `consistentHash` (route.go `hashForHTTPDestination`,
//! `hashForService`), and a TCP proxy's source-IP hash, idle timeout and
//! maximum connection duration (networkfilter.go).

use proto::pb::envoy::config::listener::v3::Filter;
use proto::pb::envoy::config::route::v3::route_action::{HashPolicy, hash_policy};
use proto::pb::envoy::r#type::v3::{HashPolicy as TcpHashPolicy, hash_policy as tcp_hash};

use crate::config::Resource;
use crate::config::hosts;
use crate::config::model::{
    ConsistentHashLb, Destination, DestinationRule, HttpRouteDestination, PortTrafficPolicy,
    TrafficPolicy,
};

use super::filters::{self, TcpTarget};
use super::registry::{MeshView, Service};

/// The rule for `host` as the proxy sees it, looked up in the namespace of
/// the service that declares the host (the proxy's own if none does).
fn rule_for<'a>(view: &MeshView<'a>, host: &str) -> Option<&'a Resource<DestinationRule>> {
    let namespace = view
        .services_of(host)
        .first()
        .map_or(view.proxy.namespace.as_str(), |s| s.namespace);
    view.destination_rule(host, namespace)
}

fn port_level(policy: Option<&TrafficPolicy>, port: u32) -> Option<&PortTrafficPolicy> {
    policy?
        .port_level_settings
        .iter()
        .find(|p| p.port.is_some_and(|sel| sel.number == port))
}

fn consistent_hash(policy: Option<&TrafficPolicy>) -> Option<&ConsistentHashLb> {
    policy?.load_balancer.as_ref()?.consistent_hash.as_ref()
}

fn port_consistent_hash(policy: Option<&TrafficPolicy>, port: u32) -> Option<&ConsistentHashLb> {
    port_level(policy, port)?
        .load_balancer
        .as_ref()?
        .consistent_hash
        .as_ref()
}

/// The consistent hash of a VirtualService destination, in istiod's order:
/// the subset's port-level settings, the subset, the rule's port-level
/// settings, the rule. Port-level settings count only for a destination
/// that names its port.
fn destination_hash<'a>(
    rule: &'a DestinationRule,
    destination: &Destination,
) -> Option<&'a ConsistentHashLb> {
    let top = rule.traffic_policy.as_ref();
    let port = destination.port.map(|p| p.number);
    let subset = rule
        .subsets
        .iter()
        .find(|s| s.name == destination.subset)
        .and_then(|s| s.traffic_policy.as_ref());
    let subset_port = port.and_then(|port| port_consistent_hash(subset, port));
    let top_port = port.and_then(|port| port_consistent_hash(top, port));
    subset_port
        .or_else(|| consistent_hash(subset))
        .or(top_port)
        .or_else(|| consistent_hash(top))
}

/// Envoy's hash policy for a consistent hash's key; `None` without a key.
fn route_hash_policy(hash: &ConsistentHashLb) -> Option<HashPolicy> {
    let specifier = if let Some(header_name) = &hash.http_header_name {
        hash_policy::PolicySpecifier::Header(hash_policy::Header {
            header_name: header_name.clone(),
            ..Default::default()
        })
    } else if let Some(cookie) = &hash.http_cookie {
        hash_policy::PolicySpecifier::Cookie(hash_policy::Cookie {
            name: cookie.name.clone(),
            ttl: cookie.ttl.map(|d| filters::duration(d.0)),
            path: cookie.path.clone().unwrap_or_default(),
            ..Default::default()
        })
    } else if let Some(source_ip) = hash.use_source_ip {
        hash_policy::PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
            source_ip,
        })
    } else if let Some(name) = &hash.http_query_parameter_name {
        hash_policy::PolicySpecifier::QueryParameter(hash_policy::QueryParameter {
            name: name.clone(),
        })
    } else {
        return None;
    };
    Some(HashPolicy {
        policy_specifier: Some(specifier),
        ..Default::default()
    })
}

/// The hash policies of an `http` route: its one destination's, or those
/// of its destinations with a weight above zero, in order.
pub fn for_http_route(
    view: &MeshView<'_>,
    vs_namespace: &str,
    destinations: &[HttpRouteDestination],
) -> Vec<HashPolicy> {
    let single = destinations.len() == 1;
    destinations
        .iter()
        .filter(|d| single || d.weight.unwrap_or(0) > 0)
        .filter_map(|d| {
            let host = hosts::resolve(&d.destination.host, vs_namespace);
            let rule = rule_for(view, &host)?;
            route_hash_policy(destination_hash(&rule.spec, &d.destination)?)
        })
        .collect()
}

/// The hash policy of the default route of a service no VirtualService
/// routes: the rule's port-level consistent hash, else its own.
pub fn for_service(view: &MeshView<'_>, service: &Service<'_>) -> Option<HashPolicy> {
    let rule = view.destination_rule(&service.host, service.namespace)?;
    let top = rule.spec.traffic_policy.as_ref();
    let hash = port_consistent_hash(top, service.port.number).or_else(|| consistent_hash(top))?;
    route_hash_policy(hash)
}

/// A TCP proxy to `target` for a destination `host` (and `subset`, for a
/// single destination), with what the host's DestinationRule asks of it as
/// istiod reads it: the top-level `tcp.idleTimeout` and
/// `tcp.maxConnectionDuration`, and a source-IP hash when the rule (or the
/// subset, whose load balancer replaces the rule's) hashes by `useSourceIp`.
pub fn tcp_proxy(
    view: &MeshView<'_>,
    host: &str,
    subset: &str,
    stat_prefix: &str,
    target: TcpTarget,
) -> Filter {
    let mut config = filters::tcp_proxy_config(stat_prefix, target);
    if let Some(rule) = rule_for(view, host) {
        let top = rule.spec.traffic_policy.as_ref();
        let tcp = top
            .and_then(|p| p.connection_pool.as_ref())
            .and_then(|pool| pool.tcp.as_ref());
        config.idle_timeout = tcp
            .and_then(|t| t.idle_timeout)
            .map(|d| filters::duration(d.0));
        config.max_downstream_connection_duration = tcp
            .and_then(|t| t.max_connection_duration)
            .map(|d| filters::duration(d.0));
        if uses_source_ip(&rule.spec, subset) {
            config.hash_policy = vec![TcpHashPolicy {
                policy_specifier: Some(tcp_hash::PolicySpecifier::SourceIp(tcp_hash::SourceIp {})),
            }];
        }
    }
    filters::tcp_proxy_filter(config)
}

fn uses_source_ip(rule: &DestinationRule, subset: &str) -> bool {
    let top = consistent_hash(rule.traffic_policy.as_ref()).and_then(|h| h.use_source_ip);
    let subset_lb = rule
        .subsets
        .iter()
        .find(|s| s.name == subset)
        .and_then(|s| s.traffic_policy.as_ref())
        .and_then(|p| p.load_balancer.as_ref());
    match subset_lb {
        Some(lb) => lb
            .consistent_hash
            .as_ref()
            .and_then(|h| h.use_source_ip)
            .unwrap_or(false),
        None => top.unwrap_or(false),
    }
}

#[cfg(test)]
mod tests;
