//! The drains of filter chains across listener updates, as Envoy's filter
//! chain only update: when an update changes a listener's filter chains
//! only, the connections of the chains it keeps equal go on untouched and
//! those of removed or changed chains drain; when it changes the listener
//! itself (address, original-destination hand-off, listener filters) or
//! removes it, all its connections drain. Each filter chain of the current
//! listeners has a drain scope its connections join once the chain is
//! chosen.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::RunningConfig;
use crate::model::listener::{DownstreamTls, FilterChain, Listener};

use super::DrainScope;

/// The chains of the current listeners, each with its drain scope.
#[derive(Debug, Default)]
pub struct ChainDrains {
    listeners: Mutex<HashMap<Arc<str>, Generation>>,
}

/// One listener as last applied.
#[derive(Debug)]
struct Generation {
    listener: Arc<Listener>,
    /// The listener's filter chains, then its default chain, then chains of
    /// connections that chose them in a newer config than this one.
    chains: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    chain: FilterChain,
    scope: Arc<DrainScope>,
}

impl Generation {
    fn new(listener: &Arc<Listener>) -> Self {
        let chains = chains_of(listener)
            .map(|chain| Entry {
                chain: chain.clone(),
                scope: Arc::default(),
            })
            .collect();
        Self {
            listener: listener.clone(),
            chains,
        }
    }
}

/// A listener's filter chains, then its default chain.
fn chains_of(listener: &Listener) -> impl Iterator<Item = &FilterChain> {
    listener
        .filter_chains
        .iter()
        .chain(listener.default_chain.as_ref())
}

impl ChainDrains {
    /// Applies `config`: the scopes of the chains it removed or changed,
    /// which the caller drains.
    pub fn update(&self, config: &RunningConfig) -> Vec<Arc<DrainScope>> {
        let mut listeners = self.listeners.lock();
        let mut draining = Vec::new();
        let mut next = HashMap::with_capacity(config.listeners.len());
        for (name, listener) in &config.listeners {
            let generation = match listeners.remove(name) {
                Some(old) if Arc::ptr_eq(&old.listener, listener) => old,
                Some(old) if same_listener(&old.listener, listener) => {
                    carry_over(old, listener, &mut draining)
                }
                Some(old) => {
                    draining.extend(old.chains.into_iter().map(|entry| entry.scope));
                    Generation::new(listener)
                }
                None => Generation::new(listener),
            };
            next.insert(name.clone(), generation);
        }
        for (_, removed) in listeners.drain() {
            draining.extend(removed.chains.into_iter().map(|entry| entry.scope));
        }
        *listeners = next;
        draining
    }

    /// The scope of `chain`, chosen for a connection by `listener` (the
    /// listener as the connection's config had it); `current` is that
    /// listener in the config applied now. A chain that an update has
    /// removed since gets a scope draining already.
    pub fn scope(
        &self,
        listener: &Arc<Listener>,
        chain: &FilterChain,
        current: Option<&Arc<Listener>>,
    ) -> Arc<DrainScope> {
        let mut listeners = self.listeners.lock();
        let generation = listeners
            .entry(listener.name.clone())
            .or_insert_with(|| Generation::new(listener));
        if Arc::ptr_eq(&generation.listener, listener)
            && let Some(index) = chains_of(listener).position(|c| std::ptr::eq(c, chain))
        {
            return generation.chains[index].scope.clone();
        }
        if let Some(entry) = generation
            .chains
            .iter()
            .find(|entry| !entry.scope.is_draining() && same_chain(&entry.chain, chain))
        {
            return entry.scope.clone();
        }
        let scope = Arc::new(DrainScope::default());
        let applied = current.is_some_and(|current| Arc::ptr_eq(current, &generation.listener));
        if applied {
            // The connection's config is older than the one applied: its
            // chain was removed or changed since.
            scope.start();
        } else {
            // The connection's config is newer: the next update keeps or
            // drains this chain as it does the others.
            generation.chains.push(Entry {
                chain: chain.clone(),
                scope: scope.clone(),
            });
        }
        scope
    }
}

/// The generation of `listener` after a filter chain only update from
/// `old`: each chain equal to one of `old` keeps its scope; the scopes of
/// the others of `old` go to `draining`.
fn carry_over(
    old: Generation,
    listener: &Arc<Listener>,
    draining: &mut Vec<Arc<DrainScope>>,
) -> Generation {
    let mut previous: Vec<Option<Entry>> = old.chains.into_iter().map(Some).collect();
    let chains = chains_of(listener)
        .map(|chain| {
            let kept = previous.iter_mut().find(|entry| {
                entry
                    .as_ref()
                    .is_some_and(|e| !e.scope.is_draining() && same_chain(&e.chain, chain))
            });
            Entry {
                chain: chain.clone(),
                scope: kept
                    .and_then(Option::take)
                    .map_or_else(Arc::default, |entry| entry.scope),
            }
        })
        .collect();
    draining.extend(previous.into_iter().flatten().map(|entry| entry.scope));
    Generation {
        listener: listener.clone(),
        chains,
    }
}

/// Whether an update from `old` to `new` changes the filter chains only.
fn same_listener(old: &Listener, new: &Listener) -> bool {
    let Listener {
        name,
        address,
        bind_to_port,
        use_original_dst,
        inspect_tls,
        filters_timeout,
        filter_chains: _,
        default_chain: _,
    } = old;
    *name == new.name
        && *address == new.address
        && *bind_to_port == new.bind_to_port
        && *use_original_dst == new.use_original_dst
        && *inspect_tls == new.inspect_tls
        && *filters_timeout == new.filters_timeout
}

/// Whether two chains are the same config, as Envoy compares their
/// messages: certificates from SDS are not part of it (a rotation changes
/// no chain).
fn same_chain(old: &FilterChain, new: &FilterChain) -> bool {
    let FilterChain {
        name,
        destination_port,
        destination_prefixes,
        tls,
        server_names,
        action,
        egress_policy,
    } = old;
    *name == new.name
        && *destination_port == new.destination_port
        && *destination_prefixes == new.destination_prefixes
        && *server_names == new.server_names
        && *action == new.action
        && *egress_policy == new.egress_policy
        && match (tls, &new.tls) {
            (Some(old), Some(new)) => same_tls(old, new),
            (None, None) => true,
            _ => false,
        }
}

/// TLS by its config: inline material, or the names of its SDS secrets.
fn same_tls(old: &DownstreamTls, new: &DownstreamTls) -> bool {
    if old.secret_names.is_empty() {
        return old == new;
    }
    old.secret_names == new.secret_names
        && old.require_client_certificate == new.require_client_certificate
        && old.alpn == new.alpn
}

#[cfg(test)]
mod tests;
