//! Backends that do not resolve, as istiod treats them: the rule keeps
//! their share as a destination no cluster serves, its routes answer 500
//! for a missing cluster, and the route's `ResolvedRefs` says why.

use serde_json::Value;

use super::rules::{CROSS_NAMESPACE, GATEWAY, loaded, route_parents, status_of};
use super::{gateway_api_proxy, xds};
use crate::config::gateway_api::status::to_yaml;

/// The Envoy route actions the gateway proxy gets for `http.80`.
fn gateway_route_actions(text: &str) -> Vec<Value> {
    let checked = loaded(text);
    assert!(checked.errors.is_empty(), "{:#?}", checked.errors);
    let gateway = gateway_api_proxy("egress");
    let served = xds(&checked, &gateway, &gateway);
    served["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter(|config| config["name"] == "http.80")
        .flat_map(|config| {
            config["virtualHosts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|host| host["routes"].as_array().cloned().unwrap_or_default())
        .map(|route| route["route"].clone())
        .collect()
}

const MISSING: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: egress}]
  rules:
  - backendRefs: [{name: missing, port: 8000}]
";

#[test]
fn a_missing_service_keeps_its_route_which_answers_500() {
    let checked = loaded(&format!("{GATEWAY}---\n{MISSING}"));
    assert_eq!(
        route_parents(status_of(&checked, "HTTPRoute", "r")),
        [[
            ("Accepted", true, "Accepted"),
            ("ResolvedRefs", false, "BackendNotFound")
        ]]
    );
    let actions = gateway_route_actions(&format!("{GATEWAY}---\n{MISSING}"));
    assert_eq!(actions.len(), 1, "{actions:#?}");
    assert_eq!(
        actions[0]["cluster"], "outbound|8000||missing.default.svc.cluster.local",
        "istiod keeps the missing Service as the destination"
    );
    assert_eq!(
        actions[0]["clusterNotFoundResponseCode"],
        "INTERNAL_SERVER_ERROR"
    );
}

#[test]
fn a_backend_not_permitted_keeps_its_share_with_no_host() {
    let split = CROSS_NAMESPACE.replace(
        "  - backendRefs: [{name: httpbin, namespace: other, port: 8000}]",
        "  - backendRefs:\n    - {name: egress-istio, port: 80, weight: 3}\n    - {name: httpbin, namespace: other, port: 8000, weight: 1}",
    );
    let checked = loaded(&format!("{GATEWAY}---\n{split}"));
    assert_eq!(
        route_parents(status_of(&checked, "HTTPRoute", "r")),
        [[
            ("Accepted", true, "Accepted"),
            ("ResolvedRefs", false, "RefNotPermitted")
        ]]
    );
    let actions = gateway_route_actions(&format!("{GATEWAY}---\n{split}"));
    let clusters = &actions[0]["weightedClusters"]["clusters"];
    assert_eq!(
        clusters[0]["name"],
        "outbound|80||egress-istio.default.svc.cluster.local"
    );
    assert_eq!(clusters[0]["weight"], 75);
    assert_eq!(
        clusters[1]["name"], "outbound|80||",
        "a quarter of the requests go to no cluster"
    );
    assert_eq!(clusters[1]["weight"], 25);
    assert_eq!(
        actions[0]["clusterNotFoundResponseCode"],
        "INTERNAL_SERVER_ERROR"
    );
}

#[test]
fn a_rule_without_backends_answers_500() {
    let none = MISSING.replace("  - backendRefs: [{name: missing, port: 8000}]", "  - {}");
    let actions = gateway_route_actions(&format!("{GATEWAY}---\n{none}"));
    assert_eq!(actions.len(), 1, "{actions:#?}");
    assert_eq!(actions[0]["cluster"], "outbound|80||");
    assert_eq!(
        actions[0]["clusterNotFoundResponseCode"],
        "INTERNAL_SERVER_ERROR"
    );
}

#[test]
fn a_status_names_the_version_its_object_was_written_in() {
    let beta = MISSING.replace(
        "gateway.networking.k8s.io/v1\n",
        "gateway.networking.k8s.io/v1beta1\n",
    );
    let checked = loaded(&format!("{GATEWAY}---\n{beta}"));
    assert_eq!(status_of(&checked, "HTTPRoute", "r").api_version, "v1beta1");
    assert_eq!(status_of(&checked, "Gateway", "egress").api_version, "v1");
    let yaml = to_yaml(&checked.gateway_api_status).expect("YAML");
    assert!(
        yaml.contains("apiVersion: gateway.networking.k8s.io/v1beta1\nkind: HTTPRoute"),
        "{yaml}"
    );
}

#[test]
fn a_tcp_route_keeps_a_backend_not_permitted_as_no_cluster() {
    let gateway = GATEWAY.replace(
        "{name: http, hostname: httpbin.org, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}",
        "{name: tcp, port: 9000, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}",
    );
    let route = "apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t}
spec:
  parentRefs: [{name: egress}]
  rules:
  - backendRefs: [{name: db, namespace: other, port: 5432}]
";
    let checked = loaded(&format!("{gateway}---\n{route}"));
    assert!(checked.errors.is_empty(), "{:#?}", checked.errors);
    assert_eq!(
        route_parents(status_of(&checked, "TCPRoute", "t")),
        [[
            ("Accepted", true, "Accepted"),
            ("ResolvedRefs", false, "RefNotPermitted")
        ]]
    );
    let tcp = &checked.snapshot.virtual_services[0].spec.tcp[0];
    assert_eq!(tcp.route[0].destination.host, "");
}
