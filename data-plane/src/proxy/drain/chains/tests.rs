//! Filter chain only updates as Envoy's listener manager applies them: the
//! connections of chains kept equal survive, those of removed or changed
//! chains drain, and a change to the listener itself drains all of them.

use std::sync::Arc;

use super::ChainDrains;
use crate::model::RunningConfig;
use crate::model::listener::{ChainAction, FilterChain, Listener, TcpProxy};
use crate::model::route::ClusterTarget;

fn tcp_chain(name: &str, port: u16, cluster: &str) -> FilterChain {
    FilterChain {
        name: name.into(),
        destination_port: Some(port),
        destination_prefixes: Vec::new(),
        tls: None,
        server_names: Vec::new(),
        action: ChainAction::Tcp(TcpProxy {
            stat_prefix: cluster.into(),
            target: ClusterTarget::Cluster(cluster.into()),
            file_access_logs: Arc::new([]),
            grpc_access_log: None,
            idle_timeout: None,
            max_downstream_connection_duration: None,
            hash_source_ip: false,
        }),
        egress_policy: None,
    }
}

fn listener(chains: Vec<FilterChain>) -> Arc<Listener> {
    Arc::new(Listener {
        name: "0.0.0.0_5432".into(),
        address: "0.0.0.0:5432".parse().unwrap(),
        bind_to_port: false,
        use_original_dst: false,
        inspect_tls: false,
        filters_timeout: Default::default(),
        filter_chains: chains,
        default_chain: None,
    })
}

fn config(listener: &Arc<Listener>) -> RunningConfig {
    let mut config = RunningConfig::default();
    config
        .listeners
        .insert(listener.name.clone(), listener.clone());
    config
}

/// Two chains: `a` to cluster `one`, `b` to cluster `two`.
fn two_chains() -> Arc<Listener> {
    listener(vec![
        tcp_chain("a", 5432, "one"),
        tcp_chain("b", 5433, "two"),
    ])
}

#[test]
fn a_filter_chain_only_update_drains_the_changed_chain_and_keeps_the_other() {
    let drains = ChainDrains::default();
    let old = two_chains();
    assert!(drains.update(&config(&old)).is_empty());
    let kept = drains.scope(&old, &old.filter_chains[0], Some(&old));
    let changed = drains.scope(&old, &old.filter_chains[1], Some(&old));

    let new = listener(vec![
        tcp_chain("a", 5432, "one"),
        tcp_chain("b", 5433, "three"),
    ]);
    let draining = drains.update(&config(&new));
    assert_eq!(draining.len(), 1);
    assert!(Arc::ptr_eq(&draining[0], &changed));
    assert!(Arc::ptr_eq(
        &drains.scope(&new, &new.filter_chains[0], Some(&new)),
        &kept
    ));
    assert!(!Arc::ptr_eq(
        &drains.scope(&new, &new.filter_chains[1], Some(&new)),
        &changed
    ));
}

#[test]
fn a_reordered_chain_keeps_its_connections() {
    let drains = ChainDrains::default();
    let old = two_chains();
    drains.update(&config(&old));
    let a = drains.scope(&old, &old.filter_chains[0], Some(&old));
    let b = drains.scope(&old, &old.filter_chains[1], Some(&old));
    let new = listener(vec![
        tcp_chain("b", 5433, "two"),
        tcp_chain("a", 5432, "one"),
    ]);
    assert!(drains.update(&config(&new)).is_empty());
    assert!(Arc::ptr_eq(
        &drains.scope(&new, &new.filter_chains[1], Some(&new)),
        &a
    ));
    assert!(Arc::ptr_eq(
        &drains.scope(&new, &new.filter_chains[0], Some(&new)),
        &b
    ));
}

#[test]
fn a_change_to_the_listener_itself_drains_every_chain() {
    let drains = ChainDrains::default();
    let old = two_chains();
    drains.update(&config(&old));
    let mut inspecting = Listener::clone(&old);
    inspecting.inspect_tls = true;
    assert_eq!(drains.update(&config(&Arc::new(inspecting))).len(), 2);
}

#[test]
fn a_removed_listener_drains_every_chain() {
    let drains = ChainDrains::default();
    drains.update(&config(&two_chains()));
    assert_eq!(drains.update(&RunningConfig::default()).len(), 2);
}

#[test]
fn a_connection_that_chose_a_chain_the_applied_update_removed_drains_at_once() {
    let drains = ChainDrains::default();
    let old = two_chains();
    drains.update(&config(&old));
    let new = listener(vec![tcp_chain("a", 5432, "one")]);
    drains.update(&config(&new));
    let late = drains.scope(&old, &old.filter_chains[1], Some(&new));
    assert!(late.is_draining());
    let unchanged = drains.scope(&old, &old.filter_chains[0], Some(&new));
    assert!(!unchanged.is_draining());
}

#[test]
fn a_connection_ahead_of_the_update_is_kept_or_drained_by_it() {
    let drains = ChainDrains::default();
    let old = two_chains();
    drains.update(&config(&old));
    // The connection saw a config the manager has not applied yet.
    let new = listener(vec![
        tcp_chain("a", 5432, "one"),
        tcp_chain("b", 5433, "three"),
    ]);
    let ahead = drains.scope(&new, &new.filter_chains[1], Some(&new));
    assert!(!ahead.is_draining());
    let draining = drains.update(&config(&new));
    assert_eq!(draining.len(), 1, "only the old chain b drains");
    assert!(!Arc::ptr_eq(&draining[0], &ahead));
    assert!(Arc::ptr_eq(
        &drains.scope(&new, &new.filter_chains[1], Some(&new)),
        &ahead
    ));
}
