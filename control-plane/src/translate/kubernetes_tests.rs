//! Kubernetes Services translated as istiod translates them: the egress
//! gateway's own Service makes the gateway proxy the endpoint of
//! `outbound|80||istio-egressgateway.istio-system.svc.cluster.local`; a
//! Service's virtual host answers to its short forms and cluster IP; an
//! ExternalName Service is a DNS cluster of the external name; a named
//! target port is the selected WorkloadEntry's port of that name.

use std::fs;
use std::path::Path;

use proto::pb::envoy::config::cluster::v3::{Cluster, cluster};
use proto::pb::envoy::config::core::v3::{address, socket_address};
use proto::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, lb_endpoint};
use serde_json::Value;

use super::test_proxies::{egress_gateway, served_json, sidecar_in};
use super::tests::check_golden;
use super::{ProxyResources, Workload, translate};
use crate::config::load::load_str;
use crate::config::{ConfigSnapshot, check};

const GATEWAY_HOST: &str = "istio-egressgateway.istio-system.svc.cluster.local";

fn repository(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The seed's egress gateway HTTP step with the gateway's Service from
/// `examples/` in place of its stand-in ServiceEntry.
fn gateway_step() -> ConfigSnapshot {
    let step = "control-plane/tests/fixtures/seed/06-egress-gateway-http";
    let documents: Vec<String> = [
        "gateway-destinationrule.yaml",
        "serviceentry-cnn.yaml",
        "virtualservice.yaml",
    ]
    .iter()
    .map(|file| repository(&format!("{step}/{file}")))
    .chain([repository(
        "examples/kubernetes/istio-egressgateway-service.yaml",
    )])
    .collect();
    config(&documents.join("\n---\n"))
}

fn config(text: &str) -> ConfigSnapshot {
    let snapshot =
        load_str(Path::new("k8s.yaml"), text).unwrap_or_else(|errors| panic!("loads: {errors}"));
    let checked = check(snapshot);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    checked.snapshot
}

/// The egress gateway, connected with the trusted gateway service account.
fn gateway_workloads() -> Vec<Workload> {
    let gateway = egress_gateway()
        .as_workload()
        .expect("the gateway has an IP");
    vec![Workload {
        trusted_gateway: true,
        ..gateway
    }]
}

fn cluster<'a>(resources: &'a ProxyResources, name: &str) -> &'a Cluster {
    resources
        .clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

fn endpoint_addresses(resources: &ProxyResources, name: &str) -> Vec<(String, u32)> {
    let assignment: &ClusterLoadAssignment = resources
        .endpoints
        .iter()
        .find(|e| e.cluster_name == name)
        .unwrap_or_else(|| panic!("no endpoints of {name}"));
    assignment
        .endpoints
        .iter()
        .flat_map(|locality| locality.lb_endpoints.iter())
        .filter_map(|lb| match &lb.host_identifier {
            Some(lb_endpoint::HostIdentifier::Endpoint(endpoint)) => endpoint.address.as_ref(),
            _ => None,
        })
        .filter_map(|address| match &address.address {
            Some(address::Address::SocketAddress(socket)) => Some(socket),
            _ => None,
        })
        .map(|socket| {
            let port = match socket.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(port)) => port,
                _ => 0,
            };
            (socket.address.clone(), port)
        })
        .collect()
}

#[test]
fn the_gateway_service_makes_the_gateway_proxy_the_endpoint_on_its_target_port() {
    let snapshot = gateway_step();
    let resources = translate(&snapshot, &gateway_workloads(), &sidecar_in("default"));
    let name = format!("outbound|80||{GATEWAY_HOST}");
    assert_eq!(
        cluster(&resources, &name).cluster_discovery_type,
        Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32
        ))
    );
    assert_eq!(
        endpoint_addresses(&resources, &name),
        [("10.1.0.9".to_string(), 8080)]
    );
    assert_eq!(
        endpoint_addresses(&resources, &format!("outbound|443||{GATEWAY_HOST}")),
        [("10.1.0.9".to_string(), 8443)]
    );
}

#[test]
fn the_gateway_listens_on_its_service_target_port() {
    let snapshot = gateway_step();
    let resources = translate(&snapshot, &gateway_workloads(), &egress_gateway());
    let names: Vec<&str> = resources
        .listeners
        .iter()
        .map(|l| l.name.as_str())
        .collect();
    assert_eq!(names, ["0.0.0.0_8080"]);
}

#[test]
fn the_gateway_step_with_the_gateway_service_matches_its_golden_files() {
    let snapshot = gateway_step();
    let workloads = gateway_workloads();
    let sidecar: Value = served_json(&snapshot, &workloads, &sidecar_in("default"));
    check_golden("kubernetes/egress-gateway-service/sidecar", &sidecar);
    let gateway: Value = served_json(&snapshot, &workloads, &egress_gateway());
    check_golden("kubernetes/egress-gateway-service/gateway", &gateway);
}

const HTTPBIN: &str = "\
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: default}
spec:
  clusterIP: 10.96.0.30
  ports: [{name: http, port: 8000, targetPort: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: httpbin, namespace: default}
subsets:
- addresses: [{ip: 10.244.0.7}]
  ports: [{name: http, port: 80}]
";

fn domains(resources: &ProxyResources, route: &str, virtual_host: &str) -> Vec<String> {
    resources
        .routes
        .iter()
        .find(|r| r.name == route)
        .unwrap_or_else(|| panic!("no route {route}"))
        .virtual_hosts
        .iter()
        .find(|v| v.name == virtual_host)
        .unwrap_or_else(|| panic!("no virtual host {virtual_host}"))
        .domains
        .clone()
}

#[test]
fn a_service_answers_to_its_short_forms_and_cluster_ip_from_its_own_namespace() {
    let snapshot = config(HTTPBIN);
    let resources = translate(&snapshot, &[], &sidecar_in("default"));
    let host = "httpbin.default.svc.cluster.local";
    assert_eq!(
        domains(&resources, "8000", &format!("{host}:8000")),
        [
            host,
            &format!("{host}:8000"),
            "httpbin",
            "httpbin:8000",
            "httpbin.default.svc",
            "httpbin.default.svc:8000",
            "httpbin.default",
            "httpbin.default:8000",
            "10.96.0.30",
            "10.96.0.30:8000",
        ]
    );
    assert_eq!(
        endpoint_addresses(&resources, &format!("outbound|8000||{host}")),
        [("10.244.0.7".to_string(), 80)]
    );
}

#[test]
fn from_another_namespace_the_bare_name_is_not_the_service() {
    let snapshot = config(HTTPBIN);
    let resources = translate(&snapshot, &[], &sidecar_in("other"));
    let host = "httpbin.default.svc.cluster.local";
    let domains = domains(&resources, "8000", &format!("{host}:8000"));
    assert!(
        !domains
            .iter()
            .any(|d| d == "httpbin" || d == "httpbin:8000")
    );
    assert!(domains.iter().any(|d| d == "httpbin.default"));
}

#[test]
fn an_external_name_service_is_a_dns_cluster_of_the_external_name() {
    let snapshot = config(
        "\
apiVersion: v1
kind: Service
metadata: {name: my-httpbin, namespace: default}
spec:
  type: ExternalName
  externalName: httpbin.org
  ports: [{name: http, port: 80}]
",
    );
    let resources = translate(&snapshot, &[], &sidecar_in("default"));
    let name = "outbound|80||my-httpbin.default.svc.cluster.local";
    let cluster = cluster(&resources, name);
    assert_eq!(
        cluster.cluster_discovery_type,
        Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::StrictDns as i32
        ))
    );
    let assignment = cluster
        .load_assignment
        .as_ref()
        .expect("DNS cluster has its hosts");
    let hosts = format!("{assignment:?}");
    assert!(hosts.contains("\"httpbin.org\""), "{hosts}");
}

const REVIEWS_SELECTING_VMS: &str = "\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080, targetPort: web}
  - {name: metrics, port: 15014, targetPort: 15014}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-a, namespace: bookinfo}
spec:
  address: 10.0.0.1
  labels: {app: reviews}
  ports: {web: 8080, metrics: 9000}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-b, namespace: bookinfo}
spec:
  address: 10.0.0.2
  labels: {app: reviews}
  ports: {http: 7070}
";

#[test]
fn a_named_target_port_is_the_selected_entrys_port_of_that_name() {
    let snapshot = config(REVIEWS_SELECTING_VMS);
    let resources = translate(&snapshot, &[], &sidecar_in("default"));
    assert_eq!(
        endpoint_addresses(
            &resources,
            "outbound|9080||reviews.bookinfo.svc.cluster.local"
        ),
        [("10.0.0.1".to_string(), 8080)],
        "the entry without a `web` port does not serve the Service port, as istiod leaves it out"
    );
    assert_eq!(
        endpoint_addresses(
            &resources,
            "outbound|15014||reviews.bookinfo.svc.cluster.local"
        ),
        [
            ("10.0.0.1".to_string(), 9000),
            ("10.0.0.2".to_string(), 15014)
        ],
        "a numeric target port: the entry's port of the Service port's name, else the target port"
    );
}
