//! Who may be an endpoint of a `workloadSelector` service: a WorkloadEntry
//! it selects, a trusted gateway (or the deployment of a Gateway API
//! Gateway), or a proxy whose service account a
//! WorkloadGroup of the service's namespace declares for the selected
//! labels. Claimed labels alone never suffice.

use std::collections::BTreeMap;
use std::path::Path;

use proto::pb::envoy::config::core::v3::{address, socket_address};
use proto::pb::envoy::config::endpoint::v3::lb_endpoint;
use shared::node::{NodeId, NodeType};

use super::super::{Proxy, Workload, translate};
use crate::config::ConfigSnapshot;
use crate::config::load::load_str;
use crate::config::validate;
use crate::test_yaml::egress_gateway_service;

/// The egress gateway's service, on port 80.
fn gateway_service() -> String {
    egress_gateway_service(&["{number: 80, name: http, protocol: HTTP}"])
}
const GATEWAY_CLUSTER: &str = "outbound|80||istio-egressgateway.istio-system.svc.cluster.local";

const REVIEWS_SERVICE: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  resolution: STATIC
  workloadSelector:
    labels: {app: reviews}
";
const REVIEWS_CLUSTER: &str = "outbound|9080||reviews.shop.svc.cluster.local";

/// A WorkloadGroup `reviews` whose members carry `labels` and run as
/// `service_account`.
fn reviews_group(namespace: &str, labels: &str, service_account: &str) -> String {
    group(
        "reviews",
        namespace,
        labels,
        &format!("{{serviceAccount: {service_account}}}"),
    )
}

/// A WorkloadGroup with the given metadata labels and template (YAML flow
/// mappings).
fn group(name: &str, namespace: &str, labels: &str, template: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata:
  name: {name}
  namespace: {namespace}
spec:
  metadata:
    labels: {labels}
  template: {template}
"
    )
}

/// The valid config of YAML documents.
fn config(documents: &[&str]) -> ConfigSnapshot {
    let snapshot = load_str(Path::new("cfg.yaml"), &documents.join("---\n"))
        .unwrap_or_else(|errors| panic!("loads: {errors}"));
    assert_eq!(validate(&snapshot), Vec::new());
    snapshot
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A connected proxy as a workload, with the service account of its token.
fn workload(
    namespace: &str,
    address: &str,
    claimed: &[(&str, &str)],
    service_account: &str,
) -> Workload {
    Workload {
        namespace: namespace.to_string(),
        address: address.to_string(),
        labels: labels(claimed),
        service_account: service_account.to_string(),
        trusted_gateway: false,
        router: false,
        name: "reviews-v1".to_string(),
        cluster: "Kubernetes".to_string(),
    }
}

fn sleep_sidecar() -> Proxy {
    Proxy {
        id: NodeId::new(NodeType::Sidecar, "10.1.0.5", "sleep-1", "default").to_string(),
        node_type: NodeType::Sidecar,
        namespace: "default".to_string(),
        labels: labels(&[("app", "sleep")]),
        ips: vec!["10.1.0.5".to_string()],
        service_account: "sleep".to_string(),
        dns_capture: false,
    }
}

/// The endpoints a sleep sidecar's EDS gives for `cluster`: each
/// `address:port` with its load-balancing weight.
fn eds_endpoints(
    snapshot: &ConfigSnapshot,
    workloads: &[Workload],
    cluster: &str,
) -> Vec<(String, Option<u32>)> {
    let resources = translate(snapshot, workloads, &sleep_sidecar());
    let assignment = resources
        .endpoints
        .iter()
        .find(|assignment| assignment.cluster_name == cluster)
        .unwrap_or_else(|| panic!("the sidecar gets EDS for {cluster}"));
    assignment
        .endpoints
        .iter()
        .flat_map(|locality| &locality.lb_endpoints)
        .filter_map(|lb| {
            let lb_endpoint::HostIdentifier::Endpoint(endpoint) = lb.host_identifier.as_ref()?
            else {
                return None;
            };
            let address::Address::SocketAddress(socket) =
                endpoint.address.as_ref()?.address.as_ref()?
            else {
                return None;
            };
            let address = match socket.port_specifier {
                Some(socket_address::PortSpecifier::PortValue(port)) => {
                    format!("{}:{port}", socket.address)
                }
                _ => socket.address.clone(),
            };
            Some((address, lb.load_balancing_weight.map(|w| w.value)))
        })
        .collect()
}

/// The `address:port` of each endpoint a sleep sidecar's EDS gives for
/// `cluster`.
fn eds_addresses(snapshot: &ConfigSnapshot, workloads: &[Workload], cluster: &str) -> Vec<String> {
    eds_endpoints(snapshot, workloads, cluster)
        .into_iter()
        .map(|(address, _)| address)
        .collect()
}

/// A connected router whose service account is a trusted gateway's.
fn trusted_gateway(address: &str, claimed: &[(&str, &str)]) -> Workload {
    Workload {
        trusted_gateway: true,
        ..workload(
            "istio-system",
            address,
            claimed,
            "istio-egressgateway-service-account",
        )
    }
}

/// A proxy of namespace `shop` labelled `app: reviews`, whose token proves
/// `service_account`.
fn reviews_proxy(address: &str, service_account: &str) -> Workload {
    workload("shop", address, &[("app", "reviews")], service_account)
}

/// A proxy of the gateway's namespace that claims its labels with the
/// token of a sidecar's service account.
fn forged_gateway() -> Workload {
    workload(
        "istio-system",
        "10.1.0.66",
        &[("istio", "egressgateway")],
        "sleep",
    )
}

/// The `address:port` endpoints of the reviews service, `documents` loaded
/// beside it.
fn reviews_addresses(documents: &[&str], workloads: &[Workload]) -> Vec<String> {
    let snapshot = config(&[&[REVIEWS_SERVICE], documents].concat());
    eds_addresses(&snapshot, workloads, REVIEWS_CLUSTER)
}

#[test]
fn forged_gateway_labels_with_a_sidecar_account_are_not_a_gateway_endpoint() {
    let snapshot = config(&[&gateway_service()]);
    assert_eq!(
        eds_addresses(&snapshot, &[forged_gateway()], GATEWAY_CLUSTER),
        Vec::<String>::new(),
        "sidecars never route to a proxy that only claims the gateway's labels"
    );
}

#[test]
fn the_trusted_gateway_is_an_endpoint_of_its_service() {
    let snapshot = config(&[&gateway_service()]);
    let gateway = trusted_gateway("10.1.0.9", &[("istio", "egressgateway")]);
    assert_eq!(
        eds_addresses(&snapshot, &[gateway, forged_gateway()], GATEWAY_CLUSTER),
        ["10.1.0.9:80"]
    );
}

#[test]
fn a_trusted_gateway_still_needs_the_selected_labels() {
    let snapshot = config(&[&gateway_service()]);
    let gateway = trusted_gateway("10.1.0.9", &[("istio", "ingressgateway")]);
    assert!(eds_addresses(&snapshot, &[gateway], GATEWAY_CLUSTER).is_empty());
}

#[test]
fn a_workload_group_admits_proxies_of_its_service_account() {
    let group = reviews_group("shop", "{app: reviews}", "reviews");
    let member = reviews_proxy("10.2.0.7", "reviews");
    let other = reviews_proxy("10.2.0.8", "ratings");
    assert_eq!(
        reviews_addresses(&[&group], &[member, other]),
        ["10.2.0.7:9080"],
        "only the service account the WorkloadGroup declares serves its labels"
    );
}

#[test]
fn a_group_member_gets_the_templates_ports_and_weight_as_an_auto_registered_entry() {
    let group = group(
        "reviews",
        "shop",
        "{app: reviews}",
        "{serviceAccount: reviews, ports: {http: 8080}, weight: 3}",
    );
    let snapshot = config(&[REVIEWS_SERVICE, &group]);
    let member = reviews_proxy("10.2.0.7", "reviews");
    assert_eq!(
        eds_endpoints(&snapshot, &[member], REVIEWS_CLUSTER),
        [("10.2.0.7:8080".to_string(), Some(3))],
        "the named port's target and the weight of the template"
    );
}

#[test]
fn of_several_groups_a_member_is_served_by_the_one_whose_labels_it_carries() {
    let v1 = group(
        "reviews-v1",
        "shop",
        "{app: reviews, version: v1}",
        "{serviceAccount: reviews, ports: {http: 8081}}",
    );
    let v2 = group(
        "reviews-v2",
        "shop",
        "{app: reviews, version: v2}",
        "{serviceAccount: reviews, ports: {http: 8082}}",
    );
    let member = workload(
        "shop",
        "10.2.0.7",
        &[("app", "reviews"), ("version", "v2")],
        "reviews",
    );
    assert_eq!(reviews_addresses(&[&v1, &v2], &[member]), ["10.2.0.7:8082"]);
}

#[test]
fn a_workload_group_labels_come_from_metadata_and_template() {
    let group = group(
        "reviews",
        "shop",
        "{}",
        "{labels: {app: reviews}, serviceAccount: reviews}",
    );
    let member = reviews_proxy("10.2.0.7", "reviews");
    assert_eq!(reviews_addresses(&[&group], &[member]), ["10.2.0.7:9080"]);
}

#[test]
fn a_workload_entry_is_an_endpoint_itself_not_a_pass_for_its_service_account() {
    let entry = "apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: reviews-vm
  namespace: shop
spec:
  address: 10.2.0.50
  labels: {app: reviews}
  serviceAccount: reviews
";
    let elsewhere = reviews_proxy("10.2.0.7", "reviews");
    assert_eq!(
        reviews_addresses(&[entry], &[elsewhere]),
        ["10.2.0.50:9080"],
        "istiod serves the entry's address; a proxy of its service account elsewhere is no endpoint"
    );
}

#[test]
fn a_declaration_for_other_labels_or_another_namespace_admits_no_one() {
    let other_labels = reviews_group("shop", "{app: ratings}", "reviews");
    let other_namespace = reviews_group("default", "{app: reviews}", "reviews");
    let claimer = reviews_proxy("10.2.0.7", "reviews");
    assert!(reviews_addresses(&[&other_labels, &other_namespace], &[claimer]).is_empty());
}

#[test]
fn a_declaration_without_a_service_account_admits_no_one() {
    let group = group("reviews", "shop", "{app: reviews}", "{}");
    let claimer = reviews_proxy("10.2.0.7", "");
    assert!(reviews_addresses(&[&group], &[claimer]).is_empty());
}

/// The docs' Gateway API egress gateway `cnn-egress-gateway` (class
/// `istio`, or `class`), converted as the control plane serves it.
fn gateway_api_config(class: &str) -> ConfigSnapshot {
    let gateway = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: cnn-egress-gateway
  namespace: default
spec:
  gatewayClassName: {class}
  listeners:
  - {{name: http, hostname: edition.cnn.com, port: 80, protocol: HTTP}}
"
    );
    let checked = crate::config::check(config(&[&gateway]));
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    checked.snapshot
}
const GATEWAY_API_CLUSTER: &str = "outbound|80||cnn-egress-gateway-istio.default.svc.cluster.local";

/// A proxy of namespace `default` with the labels Istio gives the
/// deployment of `cnn-egress-gateway`, whose token proves `service_account`.
fn gateway_api_deployment(address: &str, service_account: &str, router: bool) -> Workload {
    Workload {
        router,
        ..workload(
            "default",
            address,
            &[(
                "gateway.networking.k8s.io/gateway-name",
                "cnn-egress-gateway",
            )],
            service_account,
        )
    }
}

#[test]
fn a_gateway_with_the_service_account_istio_deploys_for_a_gateway_api_gateway_is_its_endpoint() {
    let snapshot = gateway_api_config("istio");
    let deployed = gateway_api_deployment("10.1.0.20", "cnn-egress-gateway-istio", true);
    let other_account = gateway_api_deployment("10.1.0.21", "sleep", true);
    let sidecar = gateway_api_deployment("10.1.0.22", "cnn-egress-gateway-istio", false);
    assert_eq!(
        eds_addresses(
            &snapshot,
            &[deployed, other_account, sidecar],
            GATEWAY_API_CLUSTER
        ),
        ["10.1.0.20:80"],
        "only a gateway whose token proves <name>-istio serves the Gateway's Service"
    );
}

#[test]
fn a_gateway_of_another_class_trusts_no_deployment() {
    let snapshot = gateway_api_config("other");
    let deployed = gateway_api_deployment("10.1.0.20", "cnn-egress-gateway-istio", true);
    assert!(
        translate(&snapshot, &[deployed], &sleep_sidecar())
            .endpoints
            .iter()
            .all(|assignment| assignment.cluster_name != GATEWAY_API_CLUSTER)
    );
}
