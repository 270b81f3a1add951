//! Upstream TLS as istiod writes it: the service's identities (a ServiceEntry's `subjectAltNames`, its endpoints' service accounts) stand in for a DestinationRule's names, SIMPLE and MUTUAL without `sni` send the request's host (`auto_sni`), and a sidecar gets no TLS for a `credentialName` unless the rule selects it.

use std::path::Path;

use serde_json::Value;
use shared::node::{NodeId, NodeType};
use shared::type_url;

use crate::config::load::load_str;
use crate::translate::test_proxies::sidecar_with;
use crate::translate::{Proxy, to_json, translate};

fn sidecar() -> Proxy {
    sidecar_with(&[])
}

const SERVICE_ENTRY: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  ports:
  - {number: 443, name: tls, protocol: TLS}
  resolution: DNS
  subjectAltNames:
  - spiffe://cluster.local/ns/api/sa/api
  - api.example.com
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: api.example.com
  trafficPolicy:
";

fn egress_gateway() -> Proxy {
    Proxy {
        id: NodeId::new(NodeType::Router, "10.1.0.9", "egress-1", "default").to_string(),
        node_type: NodeType::Router,
        namespace: "default".to_string(),
        labels: [("istio".to_string(), "egressgateway".to_string())].into(),
        ips: vec!["10.1.0.9".to_string()],
        service_account: "egress".to_string(),
        dns_capture: false,
    }
}

/// The cluster for api.example.com:443 as `proxy` gets it when the
/// DestinationRule's `tls` is `tls` (a YAML flow mapping) and its spec
/// also holds `selector` (YAML lines of the spec, or nothing).
fn api_cluster(proxy: &Proxy, tls: &str, selector: &str) -> Value {
    let text = format!("{SERVICE_ENTRY}    tls: {tls}\n{selector}");
    let snapshot = load_str(Path::new("api.yaml"), &text).expect("loads");
    let resources = translate(&snapshot, &[], proxy).into_typed();
    let json = to_json(&resources, &[type_url::CLUSTER]).expect("converts");
    json["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|cluster| cluster["name"] == "outbound|443||api.example.com")
        .expect("the service's cluster")
        .clone()
}

/// The subject alt name matchers of the cluster for api.example.com:443
/// when the DestinationRule's `tls` is `tls`, for a sidecar, as (type,
/// name) pairs; `None` when the cluster has no such matchers.
fn verified_names(tls: &str) -> Option<Vec<(String, String)>> {
    names_of(&api_cluster(&sidecar(), tls, ""))
}

fn names_of(cluster: &Value) -> Option<Vec<(String, String)>> {
    let common = &cluster["transportSocket"]["typedConfig"]["commonTlsContext"];
    let validation = if common["combinedValidationContext"].is_object() {
        &common["combinedValidationContext"]["defaultValidationContext"]
    } else {
        &common["validationContext"]
    };
    let matchers = validation["matchTypedSubjectAltNames"].as_array()?;
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    Some(
        matchers
            .iter()
            .map(|matcher| {
                (
                    text(&matcher["sanType"]),
                    text(&matcher["matcher"]["exact"]),
                )
            })
            .collect(),
    )
}

fn pair(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

#[test]
fn simple_and_mutual_origination_verify_the_service_entry_names_when_the_rule_has_none() {
    // Sorted, as istiod lists a service's accounts.
    let entry_names = vec![
        pair("DNS", "api.example.com"),
        pair("URI", "spiffe://cluster.local/ns/api/sa/api"),
    ];
    assert_eq!(verified_names("{mode: SIMPLE}"), Some(entry_names.clone()));
    assert_eq!(
        names_of(&api_cluster(
            &egress_gateway(),
            "{mode: SIMPLE, credentialName: api-cred}",
            ""
        )),
        Some(entry_names.clone())
    );
    assert_eq!(
        verified_names(
            "{mode: MUTUAL, clientCertificate: /etc/c.pem, privateKey: /etc/k.pem, caCertificates: /etc/ca.pem}"
        ),
        Some(entry_names)
    );
}

#[test]
fn the_rule_names_win_over_the_service_entry_names() {
    assert_eq!(
        verified_names("{mode: SIMPLE, subjectAltNames: [other.example.com]}"),
        Some(vec![pair("DNS", "other.example.com")])
    );
}

#[test]
fn istio_mutual_without_names_verifies_the_service_identities() {
    assert_eq!(
        verified_names("{mode: ISTIO_MUTUAL}"),
        Some(vec![
            pair("DNS", "api.example.com"),
            pair("URI", "spiffe://cluster.local/ns/api/sa/api"),
        ])
    );
}

const SELECTED_WORKLOADS: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.internal]
  location: MESH_INTERNAL
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  resolution: STATIC
  workloadSelector: {labels: {app: reviews}}
  endpoints:
  - {address: 10.0.0.3, serviceAccount: inline}
  - {address: 10.0.0.4}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-vm, namespace: shop}
spec: {address: 10.0.0.5, labels: {app: reviews}, serviceAccount: reviews-vm}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other-vm, namespace: shop}
spec: {address: 10.0.0.6, labels: {app: other}, serviceAccount: other}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews.shop.internal
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
";

#[test]
fn istio_mutual_verifies_the_service_accounts_of_the_service_endpoints() {
    let snapshot = load_str(Path::new("reviews.yaml"), SELECTED_WORKLOADS).expect("loads");
    let resources = translate(&snapshot, &[], &sidecar()).into_typed();
    let json = to_json(&resources, &[type_url::CLUSTER]).expect("converts");
    let cluster = json["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == "outbound|9080||reviews.shop.internal")
        .expect("the service's cluster")
        .clone();
    assert_eq!(
        names_of(&cluster),
        Some(vec![
            pair("URI", "spiffe://cluster.local/ns/shop/sa/inline"),
            pair("URI", "spiffe://cluster.local/ns/shop/sa/reviews-vm"),
        ]),
        "endpoints without an account and workloads the entry does not select add nothing"
    );
}

/// The cluster's `upstream_http_protocol_options` (auto_sni and
/// auto_san_validation), or null.
fn upstream_http_options(cluster: &Value) -> Value {
    cluster["typedExtensionProtocolOptions"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["upstreamHttpProtocolOptions"]
        .clone()
}

#[test]
fn origination_without_sni_sends_the_request_host_and_checks_it_as_istiod() {
    let cluster = api_cluster(
        &sidecar(),
        "{mode: SIMPLE, caCertificates: /etc/ca.pem}",
        "",
    );
    assert!(
        cluster["transportSocket"]["typedConfig"]["sni"].is_null(),
        "no fixed SNI: {cluster}"
    );
    // The ServiceEntry's names are verified, and auto_san_validation
    // too: istiod decides it from the rule's own names.
    assert_eq!(
        upstream_http_options(&cluster),
        serde_json::json!({"autoSni": true, "autoSanValidation": true})
    );
    // Against the system roots, no name check (see `auto_sni`).
    assert_eq!(
        upstream_http_options(&api_cluster(&sidecar(), "{mode: SIMPLE}", "")),
        serde_json::json!({"autoSni": true})
    );
    let options = &cluster["typedExtensionProtocolOptions"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(
        options["explicitHttpConfig"]["httpProtocolOptions"].is_object(),
        "a protocol is required beside them: {options}"
    );

    for tls in [
        "{mode: SIMPLE, subjectAltNames: [api.example.com]}",
        "{mode: SIMPLE, insecureSkipVerify: true}",
    ] {
        let cluster = api_cluster(&sidecar(), tls, "");
        assert_eq!(
            upstream_http_options(&cluster),
            serde_json::json!({"autoSni": true}),
            "{tls}"
        );
    }
}

#[test]
fn a_rule_sni_is_sent_as_it_is_without_auto_sni() {
    let cluster = api_cluster(&sidecar(), "{mode: SIMPLE, sni: api.example.com}", "");
    assert_eq!(
        cluster["transportSocket"]["typedConfig"]["sni"],
        "api.example.com"
    );
    assert!(upstream_http_options(&cluster).is_null(), "{cluster}");
    let mutual = api_cluster(&sidecar(), "{mode: ISTIO_MUTUAL}", "");
    assert!(upstream_http_options(&mutual).is_null(), "{mutual}");
}

#[test]
fn istio_mutual_verifies_the_rule_names_beside_the_mesh_root() {
    let cluster = api_cluster(
        &sidecar(),
        "{mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/api/sa/api]}",
        "",
    );
    assert_eq!(
        names_of(&cluster),
        Some(vec![pair("URI", "spiffe://cluster.local/ns/api/sa/api")])
    );
    let combined =
        &cluster["transportSocket"]["typedConfig"]["commonTlsContext"]["combinedValidationContext"];
    assert_eq!(
        combined["validationContextSdsSecretConfig"]["name"],
        "ROOTCA"
    );
}

/// The SDS names of the cluster's TLS context: its certificate's, then its
/// CA's; empty when the cluster has no TLS.
fn sds_names(cluster: &Value) -> Vec<String> {
    let common = &cluster["transportSocket"]["typedConfig"]["commonTlsContext"];
    let certificates = common["tlsCertificateSdsSecretConfigs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ca = &common["combinedValidationContext"]["validationContextSdsSecretConfig"];
    certificates
        .iter()
        .chain(std::iter::once(ca))
        .filter_map(|sds| sds["name"].as_str().map(str::to_string))
        .collect()
}

const MUTUAL_CREDENTIAL: &str = "{mode: MUTUAL, credentialName: client-credential}";
const SELECTS_SLEEP: &str = "  workloadSelector: {matchLabels: {app: sleep}}\n";

#[test]
fn a_sidecar_gets_no_tls_for_a_credential_of_a_rule_without_workload_selector() {
    for tls in [
        MUTUAL_CREDENTIAL,
        "{mode: SIMPLE, credentialName: client-credential}",
    ] {
        let cluster = api_cluster(&sidecar(), tls, "");
        assert!(cluster["transportSocket"].is_null(), "{tls}: {cluster}");
    }
}

#[test]
fn a_gateway_gets_the_credential_of_a_rule_without_workload_selector() {
    let cluster = api_cluster(&egress_gateway(), MUTUAL_CREDENTIAL, "");
    assert_eq!(
        sds_names(&cluster),
        [
            "kubernetes://client-credential",
            "kubernetes://client-credential-cacert"
        ]
    );
}

#[test]
fn a_sidecar_a_rule_selects_by_workload_selector_gets_its_credential() {
    let mut sleep = sidecar();
    sleep.labels = [("app".to_string(), "sleep".to_string())].into();
    let cluster = api_cluster(&sleep, MUTUAL_CREDENTIAL, SELECTS_SLEEP);
    assert_eq!(
        sds_names(&cluster),
        [
            "kubernetes://client-credential",
            "kubernetes://client-credential-cacert"
        ]
    );
}

#[test]
fn a_sidecar_keeps_tls_from_files_and_istio_mutual_of_a_rule_without_workload_selector() {
    for tls in [
        "{mode: SIMPLE}",
        "{mode: MUTUAL, clientCertificate: /etc/c.pem, privateKey: /etc/k.pem}",
        "{mode: ISTIO_MUTUAL}",
    ] {
        let cluster = api_cluster(&sidecar(), tls, "");
        assert!(cluster["transportSocket"].is_object(), "{tls}: {cluster}");
    }
}
