//! Kubernetes Services as istiod's registry holds them: hosts, addresses,
//! port protocols, endpoints from Endpoints and EndpointSlices, headless and
//! ExternalName Services; and kubectl output loading unchanged, with what
//! is not used named.

use std::path::Path;

use super::{port_protocol, service_entries};
use crate::config::load::{load_checked, load_str};
use crate::config::model::kube::{KubeServicePort, TargetPort};
use crate::config::model::{Location, Resolution, ServiceEntry};
use crate::config::{ConfigSnapshot, Resource, check};

/// The snapshot of YAML documents, every resource valid.
fn config(documents: &[&str]) -> ConfigSnapshot {
    let snapshot = load_str(Path::new("k8s.yaml"), &documents.join("---\n"))
        .unwrap_or_else(|errors| panic!("loads: {errors}"));
    let checked = check(snapshot);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    checked.snapshot
}

fn only_entry(documents: &[&str]) -> Resource<ServiceEntry> {
    let mut entries = service_entries(&config(documents));
    assert_eq!(entries.len(), 1);
    entries.remove(0)
}

const REVIEWS: &str = "\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080, targetPort: web}
  - {name: metrics, port: 15014, targetPort: 15014, protocol: TCP}
  - {name: dns, port: 53, protocol: UDP}
";

const REVIEWS_ENDPOINTS: &str = "\
apiVersion: v1
kind: Endpoints
metadata: {name: reviews, namespace: bookinfo}
subsets:
- addresses: [{ip: 10.244.0.5}]
  notReadyAddresses: [{ip: 10.244.0.6}]
  ports: [{name: http, port: 8080}, {name: metrics, port: 15014}]
";

#[test]
fn a_service_is_a_mesh_internal_host_of_its_namespace_with_its_cluster_ip() {
    let entry = only_entry(&[REVIEWS, REVIEWS_ENDPOINTS]);
    assert_eq!(entry.meta.namespace, "bookinfo");
    let spec = &entry.spec;
    assert_eq!(spec.hosts, ["reviews.bookinfo.svc.cluster.local"]);
    assert_eq!(spec.addresses, ["10.96.0.20"]);
    assert_eq!(spec.location, Location::MeshInternal);
    assert_eq!(spec.resolution, Resolution::Static);
    let selector = spec
        .workload_selector
        .as_ref()
        .expect("the selector selects");
    assert_eq!(
        selector.labels.get("app").map(String::as_str),
        Some("reviews")
    );
    // UDP is left out: no proxy serves it.
    let ports: Vec<_> = spec
        .ports
        .iter()
        .map(|p| (p.number, p.protocol.as_deref(), p.target_port))
        .collect();
    assert_eq!(
        ports,
        [
            (9080, Some("HTTP"), None),
            (15014, Some("TCP"), Some(15014))
        ]
    );
}

#[test]
fn ready_addresses_of_the_endpoints_are_the_endpoints_with_ports_by_name() {
    let entry = only_entry(&[REVIEWS, REVIEWS_ENDPOINTS]);
    let endpoints = &entry.spec.endpoints;
    assert_eq!(endpoints.len(), 1, "the not ready address is left out");
    assert_eq!(endpoints[0].address, "10.244.0.5");
    assert_eq!(endpoints[0].ports.get("http"), Some(&8080));
    assert_eq!(endpoints[0].ports.get("metrics"), Some(&15014));
}

#[test]
fn ready_endpoints_of_the_slices_labelled_with_the_service_name_are_endpoints() {
    let slice = "\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-x7k2p
  namespace: bookinfo
  labels: {kubernetes.io/service-name: reviews}
addressType: IPv4
endpoints:
- addresses: [10.244.1.8]
  conditions: {ready: true}
- addresses: [10.244.1.9]
  conditions: {ready: false}
- addresses: [10.244.1.10]
ports: [{name: http, port: 8080, protocol: TCP}]
";
    let other = slice
        .replace("reviews-x7k2p", "ratings-a1b2c")
        .replace("service-name: reviews", "service-name: ratings");
    let entry = only_entry(&[REVIEWS, slice, &other]);
    let addresses: Vec<_> = entry
        .spec
        .endpoints
        .iter()
        .map(|e| (e.address.as_str(), e.ports.get("http").copied()))
        .collect();
    assert_eq!(
        addresses,
        [("10.244.1.8", Some(8080)), ("10.244.1.10", Some(8080))]
    );
}

#[test]
fn a_headless_service_is_resolution_none_without_addresses() {
    let headless = REVIEWS.replace("clusterIP: 10.96.0.20", "clusterIP: None");
    let entry = only_entry(&[&headless]);
    assert_eq!(entry.spec.resolution, Resolution::None);
    assert!(entry.spec.addresses.is_empty());
}

#[test]
fn an_external_name_service_is_a_dns_service_of_the_external_name_on_its_ports() {
    let external = "\
apiVersion: v1
kind: Service
metadata: {name: my-httpbin, namespace: default}
spec:
  type: ExternalName
  externalName: httpbin.org
  ports:
  - {name: http, port: 80, protocol: TCP}
";
    let entry = only_entry(&[external]);
    let spec = &entry.spec;
    assert_eq!(spec.hosts, ["my-httpbin.default.svc.cluster.local"]);
    assert_eq!(spec.location, Location::MeshExternal);
    assert_eq!(spec.resolution, Resolution::Dns);
    assert!(spec.addresses.is_empty());
    assert!(spec.workload_selector.is_none());
    assert_eq!(spec.endpoints.len(), 1);
    assert_eq!(spec.endpoints[0].address, "httpbin.org");
    assert_eq!(spec.ports[0].number, 80);
    assert_eq!(spec.ports[0].target_port, None, "the service port itself");
}

#[test]
fn the_export_to_annotation_sets_export_to() {
    let service = REVIEWS.replace(
        "namespace: bookinfo}",
        "namespace: bookinfo, annotations: {networking.istio.io/exportTo: '., istio-system'}}",
    );
    let entry = only_entry(&[&service]);
    assert_eq!(entry.spec.export_to, [".", "istio-system"]);
}

fn port(name: &str, app_protocol: Option<&str>) -> KubeServicePort {
    KubeServicePort {
        name: name.to_string(),
        port: 8000,
        target_port: Some(TargetPort::Number(8000)),
        protocol: None,
        app_protocol: app_protocol.map(str::to_string),
    }
}

#[test]
fn port_protocols_follow_app_protocol_then_istios_port_name_rules() {
    let cases = [
        (("http", None), "HTTP"),
        (("http-web", None), "HTTP"),
        (("HTTP2", None), "HTTP2"),
        (("https-admin", None), "HTTPS"),
        (("grpc-api", None), "GRPC"),
        (("grpc-web-ui", None), "GRPC-WEB"),
        (("tls-db", None), "TLS"),
        (("tcp-db", None), "TCP"),
        (("mongo-main", None), "MONGO"),
        (("redis", None), "REDIS"),
        (("mysql-main", None), "MYSQL"),
        (("httpbin", None), "TCP"),
        (("", None), "TCP"),
        (("udp-x", None), "TCP"),
        (("tcp", Some("http")), "HTTP"),
        (("http", Some("tcp")), "TCP"),
        (("web", Some("kubernetes.io/h2c")), "HTTP2"),
        (("web", Some("kubernetes.io/ws")), "HTTP"),
        (("web", Some("kubernetes.io/wss")), "HTTPS"),
        (("http", Some("example.com/custom")), "TCP"),
    ];
    for ((name, app_protocol), protocol) in cases {
        assert_eq!(
            port_protocol(&port(name, app_protocol)),
            protocol,
            "name {name:?}, appProtocol {app_protocol:?}"
        );
    }
}

#[test]
fn an_invalid_service_is_left_out_alone_with_its_field_named() {
    let bad = "\
apiVersion: v1
kind: Service
metadata: {name: broken, namespace: default}
spec:
  type: ExternalName
  ports: [{name: http, port: 80}]
";
    let snapshot = load_str(Path::new("k8s.yaml"), &[REVIEWS, bad].join("---\n"))
        .unwrap_or_else(|errors| panic!("loads: {errors}"));
    // Asked for before validation: what is served is still built from
    // the valid Services only.
    assert_eq!(snapshot.kubernetes_service_entries().len(), 2);
    let checked = check(snapshot);
    assert_eq!(checked.snapshot.services.len(), 1);
    assert_eq!(checked.snapshot.services[0].meta.name, "reviews");
    let served = checked.snapshot.kubernetes_service_entries();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].meta.name, "reviews");
    let errors: Vec<String> = checked.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("Service default/broken")
            && errors[0].contains("spec.externalName")
            && errors[0].contains("needs externalName"),
        "{}",
        errors[0]
    );
}

/// `kubectl get svc,endpoints -n bookinfo -o yaml`, as kubectl prints it.
const KUBECTL_LIST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kubernetes/kubectl-get-svc-endpoints.yaml"
);

#[test]
fn kubectl_get_output_loads_unchanged_and_what_is_not_used_is_named() {
    let checked = load_checked(Path::new(KUBECTL_LIST), None);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    assert!(checked.not_handled.is_empty(), "{:?}", checked.not_handled);
    let snapshot = &checked.snapshot;
    assert_eq!(snapshot.services.len(), 2);
    assert_eq!(snapshot.endpoints.len(), 2);
    let entries = snapshot.kubernetes_service_entries();
    let httpbin = &entries[0].spec;
    assert_eq!(httpbin.hosts, ["httpbin.bookinfo.svc.cluster.local"]);
    let addresses: Vec<_> = httpbin
        .endpoints
        .iter()
        .map(|e| e.address.as_str())
        .collect();
    assert_eq!(addresses, ["10.244.1.17", "10.244.2.9"]);

    let lines: Vec<String> = checked.not_used.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let httpbin = &lines[0];
    assert!(
        httpbin.starts_with("not used: Service bookinfo/httpbin (")
            && httpbin.contains(", document 1, items[0]): "),
        "{httpbin}"
    );
    for field in [
        "status",
        "metadata.managedFields",
        "metadata.uid",
        "metadata.resourceVersion",
        "metadata.creationTimestamp",
        "spec.sessionAffinity",
        "spec.ipFamilies",
        "spec.ipFamilyPolicy",
        "spec.internalTrafficPolicy",
    ] {
        assert!(httpbin.contains(field), "{field} in {httpbin}");
    }
    for used in [
        "spec.clusterIP,",
        "spec.ports",
        "spec.selector",
        "metadata.labels",
    ] {
        assert!(!httpbin.contains(used), "{used} in {httpbin}");
    }
    assert!(lines[1].contains("spec.ports[].nodePort"), "{}", lines[1]);
    let endpoints = &lines[2];
    assert!(
        endpoints.starts_with("not used: Endpoints bookinfo/httpbin")
            && endpoints.contains("subsets[].addresses[].nodeName")
            && endpoints.contains("subsets[].addresses[].targetRef")
            && endpoints.contains("subsets[].notReadyAddresses[].targetRef"),
        "{endpoints}"
    );
}
