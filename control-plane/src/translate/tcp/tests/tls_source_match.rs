//! A `tls` route's match naming source labels or a source namespace, as
//! istiod's `matchTLS` applies it: on sidecars, a match for other sources
//! gives no chain (the SNI falls to the service's own chain); gateways
//! ignore the source.

use serde_json::json;

use crate::config::model::OutboundMode;
use crate::test_yaml::external_service_entry;
use crate::translate::test_proxies::sidecar_in;

use super::{cluster_of, listener, render, sidecar};

fn config(source: &str) -> String {
    let entries = [
        external_service_entry("api", "api.example.com", "[]", 443, "TLS"),
        external_service_entry("mirror", "mirror.example.com", "[]", 443, "TLS"),
    ]
    .concat();
    format!(
        "{entries}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: api, namespace: default}}
spec:
  hosts: [api.example.com]
  tls:
  - match: [{{sniHosts: [api.example.com], {source}}}]
    route: [{{destination: {{host: mirror.example.com}}}}]
"
    )
}

fn api_cluster(source: &str, proxy: &crate::translate::Proxy) -> String {
    let json = render(&config(source), OutboundMode::AllowAny, proxy);
    let wildcard = listener(&json["listeners"], "0.0.0.0_443");
    let chain = wildcard["filterChains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|c| c["filterChainMatch"]["serverNames"] == json!(["api.example.com"]))
        .expect("api's chain")
        .clone();
    cluster_of(&chain).as_str().expect("a cluster").to_string()
}

#[test]
fn a_tls_match_for_this_sidecars_labels_and_namespace_routes_it() {
    assert_eq!(
        api_cluster(
            "sourceLabels: {app: sleep}, sourceNamespace: default",
            &sidecar()
        ),
        "outbound|443||mirror.example.com"
    );
}

#[test]
fn a_tls_match_for_other_sources_is_dropped() {
    assert_eq!(
        api_cluster("sourceLabels: {app: other}", &sidecar()),
        "outbound|443||api.example.com"
    );
    assert_eq!(
        api_cluster("sourceNamespace: default", &sidecar_in("elsewhere")),
        "outbound|443||api.example.com"
    );
}
