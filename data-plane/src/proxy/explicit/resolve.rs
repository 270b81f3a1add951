//! Where an explicit-proxy `CONNECT host:port` goes, from the running
//! listeners (Envoy has no such mode): a port whose wildcard listener
//! routes by what the tunnel carries (HTTP Host, TLS SNI) takes it; a name
//! goes to the chain built for the service whose host it is (its name
//! says which, whatever cluster its route reaches); an address to the
//! listener bound to it or the chain whose destination range holds it.
//! A service that merely shares the port never takes it: that is the
//! fall-through (PassthroughCluster or BlackHoleCluster).

use std::net::IpAddr;
use std::sync::Arc;

use shared::naming::{ClusterName, Direction};

use crate::model::listener::{ChainAction, FilterChain};
use crate::model::{Listener, RunningConfig};

/// Where a CONNECT goes.
#[derive(Debug)]
pub enum ConnectRoute<'a> {
    /// This listener chooses the chain, as for a captured connection.
    Listener(&'a Arc<Listener>),
    /// This chain (of this listener) of the service whose host the target
    /// names.
    Chain(&'a Arc<Listener>, &'a FilterChain),
    /// The target is a name no service claims, but a listener of the port
    /// is bound to an address or matches address ranges: resolve the name
    /// and ask again with its address.
    Resolve,
    /// No service: the accepting listener's fall-through.
    Fallthrough,
}

/// The route for `CONNECT host:port`; `host` is a name or an IP literal.
/// A listener bound to the address, or the plain TCP chain of the service
/// the name is, comes before a wildcard listener that routes by content.
pub fn resolve_connect<'a>(config: &'a RunningConfig, host: &str, port: u16) -> ConnectRoute<'a> {
    let listeners = listeners_on(config, port);
    let literal = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    if let Some(ip) = literal
        && let Some(bound) = listeners.iter().find(|l| l.address.ip() == ip)
    {
        return ConnectRoute::Listener(bound);
    }
    if literal.is_none()
        && let Some((listener, chain)) = chain_for_host(&listeners, host)
    {
        return ConnectRoute::Chain(listener, chain);
    }
    if let Some(wildcard) = listeners
        .iter()
        .find(|l| l.address.ip().is_unspecified() && routes_by_content(l))
    {
        return ConnectRoute::Listener(wildcard);
    }
    if let Some(ip) = literal {
        return by_address(&listeners, ip);
    }
    let addresses_matter = listeners.iter().any(|l| {
        !l.address.ip().is_unspecified()
            || l.filter_chains
                .iter()
                .any(|c| !c.destination_prefixes.is_empty())
    });
    if addresses_matter {
        ConnectRoute::Resolve
    } else {
        ConnectRoute::Fallthrough
    }
}

/// The route for a CONNECT whose name resolved to `ip`.
pub fn resolve_address(config: &RunningConfig, ip: IpAddr, port: u16) -> ConnectRoute<'_> {
    by_address(&listeners_on(config, port), ip)
}

/// The listeners of `port` a CONNECT can be handed to (not the one that
/// hands connections over), by name for a stable choice.
fn listeners_on(config: &RunningConfig, port: u16) -> Vec<&Arc<Listener>> {
    let mut listeners: Vec<&Arc<Listener>> = config
        .listeners
        .values()
        .filter(|l| l.address.port() == port && !l.use_original_dst)
        .collect();
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    listeners
}

/// An HTTP listener, or one whose chains match server names: the tunnel's
/// own Host header or SNI tells its services apart.
fn routes_by_content(listener: &Listener) -> bool {
    listener
        .filter_chains
        .iter()
        .chain(&listener.default_chain)
        .any(|c| matches!(c.action, ChainAction::Http(_)) || !c.server_names.is_empty())
}

/// The listener bound to `ip`, else a wildcard listener with a chain whose
/// destination ranges hold it; else the fall-through.
fn by_address<'a>(listeners: &[&'a Arc<Listener>], ip: IpAddr) -> ConnectRoute<'a> {
    let ip = ip.to_canonical();
    if let Some(bound) = listeners.iter().find(|l| l.address.ip() == ip) {
        return ConnectRoute::Listener(bound);
    }
    listeners
        .iter()
        .find(|l| {
            l.address.ip().is_unspecified()
                && l.filter_chains
                    .iter()
                    .any(|c| c.destination_prefixes.iter().any(|r| r.contains(ip)))
        })
        .map_or(ConnectRoute::Fallthrough, |l| ConnectRoute::Listener(l))
}

/// The chain a connection to the service named `host` takes. Each plain
/// TCP chain (no server names) is named for the service it was built for
/// (`outbound|<port>||<host>`), whatever cluster its route reaches; the
/// exact host comes before the longest wildcard host that covers it. On a
/// listener bound to the service's address, the chain is the one Envoy
/// picks for a connection to that address (a route's destination subnets
/// included); on the wildcard listener, the service's last chain, the one
/// that ends its list.
fn chain_for_host<'a>(
    listeners: &[&'a Arc<Listener>],
    host: &str,
) -> Option<(&'a Arc<Listener>, &'a FilterChain)> {
    let mut best: Option<(usize, usize, &'a FilterChain)> = None;
    for (index, listener) in listeners.iter().enumerate() {
        for chain in listener.filter_chains.iter().chain(&listener.default_chain) {
            let Some(rank) = service_of(chain).and_then(|service| host_rank(service, host)) else {
                continue;
            };
            let keeps = best.is_some_and(|(best_rank, best_index, _)| {
                best_rank > rank || (best_rank == rank && best_index != index)
            });
            if !keeps {
                best = Some((rank, index, chain));
            }
        }
    }
    let (_, index, chain) = best?;
    let listener = listeners[index];
    let bound = listener.address.ip();
    if bound.is_unspecified() {
        return Some((listener, chain));
    }
    let chosen = listener
        .select_chain(listener.address.port(), Some(bound), None)
        .unwrap_or(chain);
    Some((listener, chosen))
}

/// The service host a plain TCP chain was built for, from its name.
fn service_of(chain: &FilterChain) -> Option<&str> {
    if !matches!(chain.action, ChainAction::Tcp(_)) || !chain.server_names.is_empty() {
        return None;
    }
    let name = ClusterName::parse(&chain.name)?;
    (name.direction == Direction::Outbound && name.subset.is_empty()).then_some(name.host)
}

/// How well a service host covers `name`: `None` for not at all, higher
/// is closer (the exact name beats every wildcard, a longer wildcard a
/// shorter one).
fn host_rank(service_host: &str, name: &str) -> Option<usize> {
    if service_host.eq_ignore_ascii_case(name) {
        return Some(usize::MAX);
    }
    let suffix = service_host.strip_prefix('*')?;
    let name = name.to_ascii_lowercase();
    (name.len() > suffix.len() && name.ends_with(&suffix.to_ascii_lowercase()))
        .then_some(suffix.len())
}

#[cfg(test)]
mod tests;
