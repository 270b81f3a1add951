//! Upstream TLS verification names: a ServiceEntry's `subjectAltNames`
//! stand in for a DestinationRule's, as istiod uses them.

use std::path::Path;

use serde_json::Value;
use shared::node::{NodeId, NodeType};
use shared::type_url;

use crate::config::load::load_str;
use crate::translate::{Proxy, to_json, translate};

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

fn sidecar() -> Proxy {
    Proxy {
        id: NodeId::new(NodeType::Sidecar, "10.1.0.5", "sleep-1", "default").to_string(),
        node_type: NodeType::Sidecar,
        namespace: "default".to_string(),
        labels: Default::default(),
        ips: vec!["10.1.0.5".to_string()],
        service_account: "sleep".to_string(),
    }
}

/// The subject alt name matchers of the cluster for api.example.com:443
/// when the DestinationRule's `tls` is `tls` (a YAML flow mapping), as
/// (type, name) pairs; `None` when the cluster has no such matchers.
fn verified_names(tls: &str) -> Option<Vec<(String, String)>> {
    let text = format!("{SERVICE_ENTRY}    tls: {tls}\n");
    let snapshot = load_str(Path::new("api.yaml"), &text).expect("loads");
    let resources = translate(&snapshot, &[], &sidecar()).into_typed();
    let json = to_json(&resources, &[type_url::CLUSTER]).expect("converts");
    let cluster = json["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|cluster| cluster["name"] == "outbound|443||api.example.com")
        .expect("the service's cluster");
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
    let entry_names = vec![
        pair("URI", "spiffe://cluster.local/ns/api/sa/api"),
        pair("DNS", "api.example.com"),
    ];
    assert_eq!(verified_names("{mode: SIMPLE}"), Some(entry_names.clone()));
    assert_eq!(
        verified_names("{mode: SIMPLE, credentialName: api-cred}"),
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
fn istio_mutual_verifies_the_mesh_identity_not_the_service_entry_names() {
    let names = verified_names("{mode: ISTIO_MUTUAL}").unwrap_or_default();
    assert!(names.is_empty(), "{names:?}");
}
