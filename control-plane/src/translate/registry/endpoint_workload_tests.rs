//! The workload istiod names in an endpoint's `istio.workload` metadata: a
//! selected WorkloadEntry by its own name and namespace, a connected proxy
//! as its own telemetry names it (its pod's workload, or `WORKLOAD_NAME`,
//! in its `CLUSTER_ID`); an inline endpoint names none.

use proto::wkt::{Value, value::Kind};
use shared::node::{NodeId, NodeType};

use super::{MeshView, Workload};
use crate::config::ConfigSnapshot;
use crate::config::model::Labels;
use crate::test_yaml::egress_gateway_service;
use crate::test_yaml::{checked_config, labels};
use crate::translate::proxy::Proxy;

fn proxy(
    node_type: NodeType,
    ip: &str,
    pod: &str,
    namespace: &str,
    pairs: &[(&str, &str)],
) -> Proxy {
    Proxy {
        id: NodeId::new(node_type, ip, pod, namespace).to_string(),
        node_type,
        namespace: namespace.to_string(),
        labels: labels(pairs),
        ips: vec![ip.to_string()],
        service_account: "istio-egressgateway-service-account".to_string(),
        dns_capture: false,
    }
}

/// The encoded workload of each endpoint of `host`:`port`, as a sleep
/// sidecar sees them.
fn workloads(
    snapshot: &ConfigSnapshot,
    connected: &[Workload],
    host: &str,
    port: u32,
) -> Vec<Option<String>> {
    let sleep = proxy(
        NodeType::Sidecar,
        "10.1.0.5",
        "sleep-1",
        "default",
        &[("app", "sleep")],
    );
    let view = MeshView::new(snapshot, connected, &sleep);
    let service = view.service(host, port).expect("the service is visible");
    view.endpoints(service, &Labels::new())
        .into_iter()
        .map(|endpoint| endpoint.workload.map(|workload| workload.encode()))
        .collect()
}

const GATEWAY_HOST: &str = "istio-egressgateway.istio-system.svc.cluster.local";

/// The egress gateway's deployment pod, trusted as a gateway.
fn gateway() -> (Proxy, Workload) {
    let pod = proxy(
        NodeType::Router,
        "10.1.0.9",
        "istio-egressgateway-5d8f7c9b6-x2x7q",
        "istio-system",
        &[
            ("app", "istio-egressgateway"),
            ("istio", "egressgateway"),
            ("pod-template-hash", "5d8f7c9b6"),
        ],
    );
    let workload = Workload {
        trusted_gateway: true,
        ..pod.as_workload().expect("it has an address")
    };
    (pod, workload)
}

#[test]
fn a_connected_gateway_is_named_by_its_deployment_in_the_default_cluster() {
    let snapshot = checked_config(&[&egress_gateway_service(&[
        "{number: 80, name: http, protocol: HTTP}",
    ])]);
    let (_, gateway) = gateway();
    assert_eq!(
        workloads(&snapshot, &[gateway], GATEWAY_HOST, 80),
        [Some(
            "istio-egressgateway;istio-system;istio-egressgateway;;Kubernetes".to_string()
        )]
    );
}

#[test]
fn workload_name_and_cluster_id_metadata_name_a_connected_proxy() {
    let snapshot = checked_config(&[&egress_gateway_service(&[
        "{number: 80, name: http, protocol: HTTP}",
    ])]);
    let (pod, gateway) = gateway();
    let mut node = pod.to_node();
    let metadata = node.metadata.as_mut().expect("the node has metadata");
    for (key, value) in [("WORKLOAD_NAME", "egress"), ("CLUSTER_ID", "east")] {
        metadata.fields.insert(
            key.to_string(),
            Value {
                kind: Some(Kind::StringValue(value.to_string())),
            },
        );
    }
    assert_eq!(
        workloads(
            &snapshot,
            &[gateway.with_node_metadata(&node)],
            GATEWAY_HOST,
            80
        ),
        [Some(
            "egress;istio-system;istio-egressgateway;;east".to_string()
        )],
        "the app label stays the canonical service"
    );
}

#[test]
fn a_workload_entry_is_named_by_itself_and_an_inline_endpoint_by_nothing() {
    let service = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: details
  namespace: bookinfo
spec:
  hosts: [details.bookinfo.com]
  location: MESH_INTERNAL
  ports:
  - {number: 80, name: http, protocol: HTTP}
  resolution: STATIC
  workloadSelector:
    labels: {app: details}
";
    let entry = "apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: details-vm-1
  namespace: bookinfo
spec:
  address: 2.2.2.2
  labels: {app: details, version: v2}
";
    let inline = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external
  namespace: default
spec:
  hosts: [api.example.com]
  ports:
  - {number: 443, name: tls, protocol: TLS}
  resolution: STATIC
  endpoints:
  - address: 203.0.113.7
";
    let snapshot = checked_config(&[service, entry, inline]);
    assert_eq!(
        workloads(&snapshot, &[], "details.bookinfo.com", 80),
        [Some(
            "details-vm-1;bookinfo;details;v2;Kubernetes".to_string()
        )]
    );
    assert_eq!(workloads(&snapshot, &[], "api.example.com", 443), [None]);
}
