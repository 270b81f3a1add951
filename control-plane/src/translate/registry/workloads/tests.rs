//! istiod's selection by `workloadSelector`: a ServiceEntry's selects the
//! WorkloadEntries of its namespace as endpoints; a DestinationRule's
//! applies the rule only to the proxies of its namespace it selects.

use std::path::Path;

use shared::node::{NodeId, NodeType};

use super::super::{Endpoint, MeshView};
use crate::config::load::load_str;
use crate::test_yaml::{checked_config, labels};
use crate::translate::proxy::Proxy;

fn sidecar(namespace: &str, pairs: &[(&str, &str)]) -> Proxy {
    Proxy {
        id: NodeId::new(NodeType::Sidecar, "10.1.0.5", "app-1", namespace).to_string(),
        node_type: NodeType::Sidecar,
        namespace: namespace.to_string(),
        labels: labels(pairs),
        ips: vec!["10.1.0.5".to_string()],
        service_account: "app".to_string(),
        dns_capture: false,
    }
}

const DETAILS_SERVICE: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: details-svc
  namespace: bookinfo
spec:
  hosts: [details.bookinfo.com]
  location: MESH_INTERNAL
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 9090, name: grpc, protocol: GRPC}
  resolution: STATIC
  workloadSelector:
    labels: {app: details}
";

fn entry(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )
}

/// The endpoints of details.bookinfo.com:`port` for subset `subset`.
fn details_endpoints(documents: &[&str], port: u32, subset: &[(&str, &str)]) -> Vec<Endpoint> {
    let snapshot = checked_config(documents);
    let proxy = sidecar("bookinfo", &[("app", "productpage")]);
    let view = MeshView::new(&snapshot, &[], &proxy);
    let service = view
        .service("details.bookinfo.com", port)
        .expect("the service is visible");
    view.endpoints(service, &labels(subset))
        .into_iter()
        .map(|endpoint| Endpoint {
            workload: None,
            ..endpoint
        })
        .collect()
}

fn endpoint(address: &str, port: u32, weight: Option<u32>) -> Endpoint {
    Endpoint {
        address: address.to_string(),
        port,
        weight,
        workload: None,
    }
}

#[test]
fn a_service_entry_selects_the_workload_entries_of_its_namespace_whose_labels_match() {
    let vm1 = entry(
        "details-vm-1",
        "bookinfo",
        "  address: 2.2.2.2\n  labels: {app: details, instance-id: vm1}\n  serviceAccount: details\n",
    );
    let vm2 = entry(
        "details-vm-2",
        "bookinfo",
        "  address: 3.3.3.3\n  labels: {app: details, instance-id: vm2}\n  ports: {http: 9080}\n  weight: 3\n",
    );
    let other_labels = entry(
        "ratings-vm",
        "bookinfo",
        "  address: 4.4.4.4\n  labels: {app: ratings}\n",
    );
    let other_namespace = entry(
        "details-elsewhere",
        "default",
        "  address: 5.5.5.5\n  labels: {app: details}\n",
    );
    let documents = [DETAILS_SERVICE, &vm1, &vm2, &other_labels, &other_namespace];
    assert_eq!(
        details_endpoints(&documents, 80, &[]),
        [
            // No `ports` entry for `http`: the service port's targetPort.
            endpoint("2.2.2.2", 8080, None),
            // The entry's port for the service port's name, and its weight.
            endpoint("3.3.3.3", 9080, Some(3)),
        ]
    );
    assert_eq!(
        details_endpoints(&documents, 9090, &[]),
        [
            endpoint("2.2.2.2", 9090, None),
            endpoint("3.3.3.3", 9090, Some(3))
        ],
        "without targetPort, the port's number"
    );
    assert_eq!(
        details_endpoints(&documents, 80, &[("instance-id", "vm2")]),
        [endpoint("3.3.3.3", 9080, Some(3))],
        "a subset keeps the entries whose labels it matches"
    );
}

#[test]
fn a_service_entry_without_a_selector_selects_no_workload_entry() {
    let service = DETAILS_SERVICE.replace(
        "  workloadSelector:\n    labels: {app: details}\n",
        "  endpoints:\n  - address: 6.6.6.6\n",
    );
    let vm = entry(
        "details-vm-1",
        "bookinfo",
        "  address: 2.2.2.2\n  labels: {app: details}\n",
    );
    assert_eq!(
        details_endpoints(&[&service, &vm], 80, &[]),
        [endpoint("6.6.6.6", 8080, None)]
    );
}

const CATCH_ALL_RULE: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin-all
  namespace: shop
spec:
  host: httpbin.org
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
";

const SELECTING_RULE: &str = "\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin-for-reviews
  namespace: shop
spec:
  host: httpbin.org
  workloadSelector:
    matchLabels: {app: reviews}
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
";

/// The name of the DestinationRule a proxy of `namespace` with `pairs`
/// labels gets for httpbin.org.
fn rule_for(documents: &[&str], namespace: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let snapshot = checked_config(documents);
    let proxy = sidecar(namespace, pairs);
    let view = MeshView::new(&snapshot, &[], &proxy);
    view.destination_rule("httpbin.org", "shop")
        .map(|rule| rule.meta.name.clone())
}

#[test]
fn a_destination_rule_selector_applies_to_the_proxies_of_its_namespace_it_selects() {
    let documents = [SELECTING_RULE, CATCH_ALL_RULE];
    assert_eq!(
        rule_for(&documents, "shop", &[("app", "reviews"), ("version", "v1")]).as_deref(),
        Some("httpbin-for-reviews"),
        "the rule selecting the proxy comes before the catch-all"
    );
    assert_eq!(
        rule_for(&documents, "shop", &[("app", "ratings")]).as_deref(),
        Some("httpbin-all"),
        "a proxy it does not select gets the catch-all"
    );
    assert_eq!(
        rule_for(&[SELECTING_RULE], "shop", &[("app", "ratings")]),
        None
    );
    assert_eq!(
        rule_for(&documents, "default", &[("app", "reviews")]).as_deref(),
        Some("httpbin-all"),
        "selectors do not cross namespaces: another namespace's proxy gets the exported catch-all"
    );
}

#[test]
fn a_destination_rule_selector_is_match_labels_not_labels() {
    let written_as_sidecar = SELECTING_RULE.replace("matchLabels:", "labels:");
    let error = load_str(Path::new("cfg.yaml"), &written_as_sidecar)
        .expect_err("DestinationRule.workloadSelector has matchLabels");
    assert!(
        error
            .to_string()
            .contains("spec.workloadSelector.labels: unknown field `labels`"),
        "{error}"
    );
}
