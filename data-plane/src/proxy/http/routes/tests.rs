//! Explicit proxy mode: a request to a port no listener serves takes the
//! accepting listener's fall-through, which REGISTRY_ONLY answers as
//! `block_all` does.

use std::collections::HashMap;

use crate::access_log_service::LogTargets;
use crate::model::route::ClusterTarget;
use crate::proxy::test_fixtures::fall_through_outbound;

use super::*;

/// A config whose only listener is `virtualOutbound` with only its
/// fall-through chain to `cluster`, marked.
fn config(cluster: &str, mark: Option<EgressPolicy>) -> RunningConfig {
    let listener = fall_through_outbound(cluster, mark, true);
    RunningConfig {
        listeners: HashMap::from([(listener.name.clone(), Arc::new(listener))]),
        ..RunningConfig::default()
    }
}

fn explicit() -> Downstream {
    Downstream {
        local: None,
        remote: None,
        original_dst: None,
        source: RouteSource::ExplicitProxy {
            accepting: "virtualOutbound".into(),
        },
        targets: Arc::new(LogTargets::new(
            &crate::proxy::access_log::istio_stdout(),
            None,
            None,
        )),
        peer_identity: None,
        server_name: None,
        tls: false,
        timeouts: crate::model::http_timeouts::HttpTimeouts::default(),
    }
}

fn only_route(config: &RunningConfig) -> Route {
    let table = route_table(config, &explicit(), Some(8080)).unwrap();
    table.routes.virtual_hosts[0].routes[0].clone()
}

#[test]
fn a_blocked_fall_through_answers_502_as_block_all() {
    let route = only_route(&config("BlackHoleCluster", Some(EgressPolicy::Blocked)));
    assert_eq!(
        route.action,
        RouteAction::Direct {
            status: 502,
            body: None
        }
    );
    assert_eq!(route.egress_policy, Some(EgressPolicy::Blocked));
}

#[test]
fn a_dry_run_fall_through_forwards_and_carries_its_mark() {
    let route = only_route(&config(
        "PassthroughCluster",
        Some(EgressPolicy::WouldBlock),
    ));
    assert!(
        matches!(&route.action, RouteAction::Forward(f) if f.target == ClusterTarget::Cluster("PassthroughCluster".into())),
        "{route:?}"
    );
    assert_eq!(route.egress_policy, Some(EgressPolicy::WouldBlock));
}
