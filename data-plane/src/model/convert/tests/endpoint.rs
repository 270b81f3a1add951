//! Endpoints: hosts as written, ports, weights, the workload their
//! metadata names.

use proto::pb::envoy::config::core::v3::{Address, HealthStatus, Metadata};
use proto::pb::envoy::config::endpoint::v3::endpoint::AdditionalAddress;
use proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LedsClusterLocalityConfig, LocalityLbEndpoints,
    cluster_load_assignment, lb_endpoint, locality_lb_endpoints,
};
use proto::wkt::value::Kind;
use proto::wkt::{Duration, Struct, UInt32Value, Value};
use shared::workload::EndpointWorkload;

use super::{assert_rejected, named_port_address, socket_address};
use crate::model::cluster::Endpoint as ModelEndpoint;
use crate::model::load_assignment_from_proto;

fn lb_endpoint(address: Option<Address>, weight: Option<u32>) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
            address,
            ..Default::default()
        })),
        load_balancing_weight: weight.map(|value| UInt32Value { value }),
        ..Default::default()
    }
}

fn assignment(localities: Vec<Vec<LbEndpoint>>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: "outbound|80||httpbin.org".into(),
        endpoints: localities
            .into_iter()
            .map(|lb_endpoints| LocalityLbEndpoints {
                lb_endpoints,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn endpoints_of_every_locality_keep_host_port_and_weight() {
    let la = assignment(vec![
        vec![lb_endpoint(Some(socket_address("10.0.0.1", 80)), Some(3))],
        vec![
            lb_endpoint(Some(socket_address("httpbin.org", 8080)), None),
            lb_endpoint(Some(socket_address("10.0.0.2", 80)), Some(0)),
        ],
    ]);
    let converted = load_assignment_from_proto(&la).unwrap();
    assert_eq!(&*converted.cluster_name, "outbound|80||httpbin.org");
    let endpoint = |host: &str, port, weight| ModelEndpoint {
        host: host.to_string(),
        port,
        weight,
        healthy: true,
        peer: None,
    };
    assert_eq!(
        converted.endpoints,
        [
            endpoint("10.0.0.1", 80, 3),
            endpoint("httpbin.org", 8080, 1),
            endpoint("10.0.0.2", 80, 1),
        ],
        "no weight and weight 0 both count as 1"
    );
}

#[test]
fn an_endpoint_needs_a_socket_address_with_a_port_number() {
    let cases = [
        (LbEndpoint::default(), "an endpoint address is required"),
        (
            lb_endpoint(None, None),
            "only socket addresses are supported",
        ),
        (
            lb_endpoint(Some(socket_address("10.0.0.1", 65536)), None),
            "port 65536 is out of range",
        ),
        (
            lb_endpoint(Some(named_port_address("10.0.0.1")), None),
            "a port number is required",
        ),
    ];
    for (bad, reason) in cases {
        let la = assignment(vec![
            vec![lb_endpoint(Some(socket_address("10.0.0.1", 80)), None)],
            vec![lb_endpoint(Some(socket_address("10.0.0.2", 80)), None), bad],
        ]);
        assert_rejected(
            load_assignment_from_proto(&la),
            "endpoints",
            "outbound|80||httpbin.org",
            "endpoints[1].lb_endpoints[1]",
            reason,
        );
    }
}

#[test]
fn a_locality_at_another_priority_than_0_is_rejected() {
    let mut la = assignment(vec![
        vec![lb_endpoint(Some(socket_address("10.0.0.1", 80)), None)],
        vec![lb_endpoint(Some(socket_address("10.0.0.2", 80)), None)],
    ]);
    la.endpoints[1].priority = 1;
    assert_rejected(
        load_assignment_from_proto(&la),
        "endpoints",
        "outbound|80||httpbin.org",
        "endpoints[1].priority",
        "only priority 0 is supported (the agent has one priority)",
    );
}

#[test]
fn unhealthy_draining_and_timed_out_hosts_are_kept_but_not_healthy() {
    let with_status = |host: &str, status: HealthStatus| LbEndpoint {
        health_status: status as i32,
        ..lb_endpoint(Some(socket_address(host, 80)), None)
    };
    let la = assignment(vec![vec![
        with_status("10.0.0.1", HealthStatus::Unknown),
        with_status("10.0.0.2", HealthStatus::Healthy),
        with_status("10.0.0.3", HealthStatus::Unhealthy),
        with_status("10.0.0.4", HealthStatus::Draining),
        with_status("10.0.0.5", HealthStatus::Timeout),
    ]]);
    let converted = load_assignment_from_proto(&la).unwrap();
    let health: Vec<(&str, bool)> = converted
        .endpoints
        .iter()
        .map(|e| (e.host.as_str(), e.healthy))
        .collect();
    assert_eq!(
        health,
        [
            ("10.0.0.1", true),
            ("10.0.0.2", true),
            ("10.0.0.3", false),
            ("10.0.0.4", false),
            ("10.0.0.5", false),
        ]
    );
}

#[test]
fn what_the_agent_cannot_balance_by_is_rejected_by_name() {
    let healthy = || lb_endpoint(Some(socket_address("10.0.0.1", 80)), None);
    let base = || assignment(vec![vec![healthy()]]);
    let degraded = {
        let mut la = base();
        la.endpoints[0].lb_endpoints[0].health_status = HealthStatus::Degraded as i32;
        la
    };
    let unknown_status = {
        let mut la = base();
        la.endpoints[0].lb_endpoints[0].health_status = 42;
        la
    };
    let additional = {
        let mut la = base();
        if let Some(lb_endpoint::HostIdentifier::Endpoint(ep)) =
            &mut la.endpoints[0].lb_endpoints[0].host_identifier
        {
            ep.additional_addresses = vec![AdditionalAddress {
                address: Some(socket_address("10.0.0.9", 80)),
            }];
        }
        la
    };
    let leds = {
        let mut la = base();
        la.endpoints[0].lb_config =
            Some(locality_lb_endpoints::LbConfig::LedsClusterLocalityConfig(
                LedsClusterLocalityConfig::default(),
            ));
        la
    };
    let drop_overloads = ClusterLoadAssignment {
        policy: Some(cluster_load_assignment::Policy {
            drop_overloads: vec![cluster_load_assignment::policy::DropOverload {
                category: "throttle".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..base()
    };
    let stale = ClusterLoadAssignment {
        policy: Some(cluster_load_assignment::Policy {
            endpoint_stale_after: Some(Duration {
                seconds: 30,
                nanos: 0,
            }),
            ..Default::default()
        }),
        ..base()
    };
    let named = ClusterLoadAssignment {
        named_endpoints: [("a".to_string(), Endpoint::default())].into(),
        ..base()
    };
    let cases = [
        (
            degraded,
            "endpoints[0].lb_endpoints[0].health_status",
            "degraded hosts are not supported",
        ),
        (
            unknown_status,
            "endpoints[0].lb_endpoints[0].health_status",
            "unknown health status 42",
        ),
        (
            additional,
            "endpoints[0].lb_endpoints[0].endpoint.additional_addresses",
            "additional addresses are not supported",
        ),
        (
            leds,
            "endpoints[0].leds_cluster_locality_config",
            "LEDS is not supported; list the endpoints in lb_endpoints",
        ),
        (
            drop_overloads,
            "policy.drop_overloads",
            "dropping overload is not supported",
        ),
        (
            stale,
            "policy.endpoint_stale_after",
            "stale endpoints are not supported",
        ),
        (
            named,
            "named_endpoints",
            "named endpoints are not supported",
        ),
    ];
    for (la, field, reason) in cases {
        assert_rejected(
            load_assignment_from_proto(&la),
            "endpoints",
            "outbound|80||httpbin.org",
            field,
            reason,
        );
    }
}

#[test]
fn locality_weights_and_the_overprovisioning_factor_change_nothing_with_one_priority() {
    let mut la = assignment(vec![
        vec![lb_endpoint(Some(socket_address("10.0.0.1", 80)), None)],
        vec![lb_endpoint(Some(socket_address("10.0.0.2", 80)), None)],
    ]);
    la.endpoints[0].load_balancing_weight = Some(UInt32Value { value: 9 });
    la.policy = Some(cluster_load_assignment::Policy {
        overprovisioning_factor: Some(UInt32Value { value: 140 }),
        ..Default::default()
    });
    let converted = load_assignment_from_proto(&la).unwrap();
    let weights: Vec<u32> = converted.endpoints.iter().map(|e| e.weight).collect();
    assert_eq!(weights, [1, 1]);
}

/// An endpoint at 10.0.0.7:80 whose `filter_metadata["istio"]["workload"]`
/// is `workload`.
fn with_workload(workload: Value) -> LbEndpoint {
    let istio = Struct {
        fields: [("workload".to_string(), workload)].into_iter().collect(),
    };
    LbEndpoint {
        metadata: Some(Metadata {
            filter_metadata: [("istio".to_string(), istio)].into_iter().collect(),
            ..Default::default()
        }),
        ..lb_endpoint(Some(socket_address("10.0.0.7", 80)), None)
    }
}

fn text(value: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(value.to_string())),
    }
}

#[test]
fn an_endpoints_istio_workload_names_its_peer_and_a_malformed_one_is_ignored() {
    let la = assignment(vec![vec![
        with_workload(text(
            "istio-egressgateway;istio-system;istio-egressgateway;;Kubernetes",
        )),
        with_workload(text("only;four;parts;here")),
        with_workload(Value {
            kind: Some(Kind::NumberValue(7.0)),
        }),
        lb_endpoint(Some(socket_address("10.0.0.8", 80)), None),
    ]]);
    let converted = load_assignment_from_proto(&la).expect("metadata never rejects an endpoint");
    let peers: Vec<Option<&EndpointWorkload>> = converted
        .endpoints
        .iter()
        .map(|endpoint| endpoint.peer.as_deref())
        .collect();
    let gateway = EndpointWorkload {
        name: "istio-egressgateway".into(),
        namespace: "istio-system".into(),
        canonical_service: "istio-egressgateway".into(),
        canonical_revision: String::new(),
        cluster: "Kubernetes".into(),
    };
    assert_eq!(peers, [Some(&gateway), None, None, None]);
}
