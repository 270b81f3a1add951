//! Endpoints: hosts as written, ports, weights.

use proto::pb::envoy::config::core::v3::Address;
use proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use proto::wkt::UInt32Value;

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
