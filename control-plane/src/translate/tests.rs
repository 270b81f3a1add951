//! Golden-file tests: every step of the seed walkthrough, translated for a
//! sidecar in `default` and for the egress gateway, compared with the JSON
//! under `tests/golden/`. Run with `UPDATE_GOLDEN=1` to rewrite them after a
//! deliberate change, then review the diff.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cluster::upstream_tls;
use super::test_proxies::{egress_gateway, served_json, sidecar_in};
use super::{Proxy, Workload};
use crate::config::ConfigSnapshot;
use crate::config::load::load_validated;
use crate::config::model::{ClientTlsSettings, TlsMode};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The xDS `proxy` gets for fixture step `step` under `mesh`, as JSON. The
/// gateway is connected with the trusted gateway service account, so it is
/// an endpoint of its own service.
fn render(step: &str, mesh: &str, proxy: &Proxy) -> Value {
    render_edited(step, mesh, proxy, |_| {})
}

/// As [`render`], with the loaded config changed by `edit` first.
pub(super) fn render_edited(
    step: &str,
    mesh: &str,
    proxy: &Proxy,
    edit: impl FnOnce(&mut ConfigSnapshot),
) -> Value {
    let dir = fixtures().join("seed").join(step);
    let mesh = fixtures().join("mesh").join(mesh);
    let mut snapshot = load_validated(&dir, Some(&mesh)).unwrap_or_else(|e| panic!("{step}: {e}"));
    edit(&mut snapshot);
    let workloads: Vec<Workload> = egress_gateway()
        .as_workload()
        .map(|gateway| Workload {
            trusted_gateway: true,
            ..gateway
        })
        .into_iter()
        .collect();
    served_json(&snapshot, &workloads, proxy)
}

pub(super) fn check_golden(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let rendered = serde_json::to_string_pretty(actual).expect("JSON renders") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, rendered).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == rendered,
        "{} differs from the translation; run with UPDATE_GOLDEN=1 and review the diff",
        path.display()
    );
}

pub(super) fn seed_steps() -> Vec<String> {
    let mut steps: Vec<String> = std::fs::read_dir(fixtures().join("seed"))
        .expect("seed fixtures exist")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    steps.sort();
    steps
}

#[test]
fn seed_steps_match_golden_files() {
    let steps = seed_steps();
    assert!(
        steps.len() >= 8,
        "expected every walkthrough step, found {steps:?}"
    );
    for step in steps {
        for mesh in ["allow-any.yaml", "registry-only.yaml"] {
            let mode = mesh.trim_end_matches(".yaml");
            check_golden(
                &format!("{step}/{mode}/sidecar"),
                &render(&step, mesh, &sidecar_in("default")),
            );
        }
        check_golden(
            &format!("{step}/gateway"),
            &render(&step, "registry-only.yaml", &egress_gateway()),
        );
    }
}

fn find<'a>(items: &'a Value, key: &str, name: &str) -> &'a Value {
    items
        .as_array()
        .and_then(|items| items.iter().find(|i| i[key] == name))
        .unwrap_or_else(|| panic!("no {name} in {items:#}"))
}

#[test]
fn registry_only_blocks_unknown_http_with_502_and_tls_with_blackhole() {
    let json = render(
        "01-httpbin-serviceentry",
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let route = find(&json["routes"], "name", "80");
    let block = find(&route["virtualHosts"], "name", "block_all");
    assert_eq!(block["routes"][0]["directResponse"]["status"], 502);
    let outbound = find(&json["listeners"], "name", "virtualOutbound");
    assert_eq!(
        outbound["defaultFilterChain"]["filters"][0]["typedConfig"]["cluster"],
        "BlackHoleCluster"
    );
}

#[test]
fn allow_any_passes_unknown_traffic_through() {
    let json = render(
        "01-httpbin-serviceentry",
        "allow-any.yaml",
        &sidecar_in("default"),
    );
    let route = find(&json["routes"], "name", "80");
    let allow = find(&route["virtualHosts"], "name", "allow_any");
    assert_eq!(allow["routes"][0]["route"]["cluster"], "PassthroughCluster");
    let outbound = find(&json["listeners"], "name", "virtualOutbound");
    assert_eq!(
        outbound["defaultFilterChain"]["filters"][0]["typedConfig"]["cluster"],
        "PassthroughCluster"
    );
}

#[test]
fn http_service_entry_routes_with_decorator() {
    let json = render(
        "01-httpbin-serviceentry",
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let route = find(&json["routes"], "name", "80");
    let vhost = find(&route["virtualHosts"], "name", "httpbin.org:80");
    assert_eq!(
        vhost["domains"],
        serde_json::json!(["httpbin.org", "httpbin.org:80"])
    );
    assert_eq!(
        vhost["routes"][0]["route"]["cluster"],
        "outbound|80||httpbin.org"
    );
    assert_eq!(
        vhost["routes"][0]["decorator"]["operation"],
        "httpbin.org:80/*"
    );
    let cluster = find(&json["clusters"], "name", "outbound|80||httpbin.org");
    assert_eq!(cluster["type"], "STRICT_DNS");
}

#[test]
fn virtual_service_timeout_becomes_route_timeout() {
    let json = render(
        "03-httpbin-timeout",
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let route = find(&json["routes"], "name", "80");
    let vhost = find(&route["virtualHosts"], "name", "httpbin.org:80");
    assert_eq!(vhost["routes"][0]["route"]["timeout"], "3s");
    assert_eq!(
        vhost["routes"][0]["route"]["cluster"],
        "outbound|80||httpbin.org"
    );
}

#[test]
fn https_service_entry_routes_by_sni() {
    let json = render(
        "02-baidu-https",
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let listener = find(&json["listeners"], "name", "0.0.0.0_443");
    let chain = find(&listener["filterChains"], "name", "www.baidu.com");
    assert_eq!(
        chain["filterChainMatch"]["serverNames"],
        serde_json::json!(["www.baidu.com"])
    );
    assert_eq!(
        chain["filters"][0]["typedConfig"]["cluster"],
        "outbound|443||www.baidu.com"
    );
}

#[test]
fn tls_origination_subset_gets_upstream_tls_with_auto_sni() {
    let json = render(
        "05-cnn-tls-origination",
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let route = find(&json["routes"], "name", "80");
    let vhost = find(&route["virtualHosts"], "name", "edition.cnn.com:80");
    assert_eq!(
        vhost["routes"][0]["route"]["cluster"],
        "outbound|443|tls-origination|edition.cnn.com"
    );
    let cluster = find(
        &json["clusters"],
        "name",
        "outbound|443|tls-origination|edition.cnn.com",
    );
    // istiod: no `sni` in the rule, so the request's host is the SNI.
    assert!(cluster["transportSocket"]["typedConfig"]["sni"].is_null());
    assert_eq!(
        cluster["typedExtensionProtocolOptions"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            ["upstreamHttpProtocolOptions"]["autoSni"],
        true
    );
    let plain = find(
        &json["clusters"],
        "name",
        "outbound|80|tls-origination|edition.cnn.com",
    );
    assert!(plain.get("transportSocket").is_none());
}

#[test]
fn egress_gateway_http_two_hops() {
    let sidecar_json = render(
        "06-egress-gateway-http",
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let route = find(&sidecar_json["routes"], "name", "80");
    let vhost = find(&route["virtualHosts"], "name", "edition.cnn.com:80");
    assert_eq!(
        vhost["routes"][0]["route"]["cluster"],
        "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local"
    );
    let endpoints = find(
        &sidecar_json["endpoints"],
        "clusterName",
        "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local",
    );
    assert_eq!(
        endpoints["endpoints"][0]["lbEndpoints"][0]["endpoint"]["address"]["socketAddress"]["address"],
        "10.1.0.9"
    );

    let gateway_json = render(
        "06-egress-gateway-http",
        "registry-only.yaml",
        &egress_gateway(),
    );
    let listener = find(&gateway_json["listeners"], "name", "0.0.0.0_80");
    assert!(
        listener.get("bindToPort").is_none(),
        "the gateway binds its port"
    );
    let route = find(&gateway_json["routes"], "name", "http.80");
    let vhost = find(&route["virtualHosts"], "name", "edition.cnn.com:80");
    assert_eq!(
        vhost["routes"][0]["route"]["cluster"],
        "outbound|80||edition.cnn.com"
    );
}

#[test]
fn egress_gateway_https_passthrough_by_sni() {
    let sidecar_json = render(
        "07-egress-gateway-https",
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let listener = find(&sidecar_json["listeners"], "name", "0.0.0.0_443");
    let chain = find(&listener["filterChains"], "name", "edition.cnn.com");
    assert_eq!(
        chain["filters"][0]["typedConfig"]["cluster"],
        "outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local"
    );
    let gateway_json = render(
        "07-egress-gateway-https",
        "registry-only.yaml",
        &egress_gateway(),
    );
    let listener = find(&gateway_json["listeners"], "name", "0.0.0.0_443");
    let chain = find(&listener["filterChains"], "name", "edition.cnn.com");
    assert_eq!(
        chain["filters"][0]["typedConfig"]["cluster"],
        "outbound|443||edition.cnn.com"
    );
}

#[test]
fn destination_rule_lookup_prefers_the_proxy_namespace() {
    let json = render(
        "08-test-egress-destinationrule",
        "registry-only.yaml",
        &sidecar_in("test-egress"),
    );
    assert!(
        json["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .any(|c| c["name"]
                == "outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local"),
        "a sidecar in test-egress sees the subset its own namespace's DestinationRule defines"
    );
}

const TLS_ORIGINATION_VIA_GATEWAY: &str = "09-egress-gateway-tls-origination";
const GATEWAY_HOST: &str = "istio-egressgateway.istio-system.svc.cluster.local";

/// Asserts a CommonTlsContext takes `default` and `ROOTCA` from the local
/// agent through the `sds-grpc` cluster, field for field as istiod writes it.
fn assert_istio_mutual_sds(common: &Value) {
    let agent = serde_json::json!({
        "apiConfigSource": {
            "apiType": "GRPC",
            "transportApiVersion": "V3",
            "setNodeOnFirstMessageOnly": true,
            "grpcServices": [{"envoyGrpc": {"clusterName": "sds-grpc"}}]
        },
        "initialFetchTimeout": "0s",
        "resourceApiVersion": "V3"
    });
    assert_eq!(
        common["tlsCertificateSdsSecretConfigs"],
        serde_json::json!([{"name": "default", "sdsConfig": agent}])
    );
    assert_eq!(
        common["validationContextSdsSecretConfig"],
        serde_json::json!({"name": "ROOTCA", "sdsConfig": agent})
    );
}

#[test]
fn sidecar_originates_istio_mutual_to_the_gateway_with_sds_and_the_rule_sni() {
    let json = render(
        TLS_ORIGINATION_VIA_GATEWAY,
        "registry-only.yaml",
        &sidecar_in("default"),
    );
    let cluster_name = format!("outbound|443|cnn|{GATEWAY_HOST}");
    let route = find(&json["routes"], "name", "80");
    let vhost = find(&route["virtualHosts"], "name", "edition.cnn.com:80");
    assert_eq!(
        vhost["routes"][0]["route"]["cluster"],
        cluster_name.as_str()
    );
    let cluster = find(&json["clusters"], "name", &cluster_name);
    let socket = &cluster["transportSocket"];
    assert_eq!(socket["name"], "envoy.transport_sockets.tls");
    let tls = &socket["typedConfig"];
    assert_eq!(
        tls["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    assert_eq!(tls["sni"], "edition.cnn.com", "the rule's sni");
    // No subjectAltNames in the rule: istiod verifies the service's
    // accounts, here the connected gateway's, beside the mesh root.
    let combined = &tls["commonTlsContext"]["combinedValidationContext"];
    assert_eq!(
        combined["defaultValidationContext"]["matchTypedSubjectAltNames"][0]["matcher"]["exact"],
        "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account"
    );
    let mut common = tls["commonTlsContext"].clone();
    common["validationContextSdsSecretConfig"] =
        combined["validationContextSdsSecretConfig"].clone();
    assert_istio_mutual_sds(&common);
    let plain = find(
        &json["clusters"],
        "name",
        &format!("outbound|443||{GATEWAY_HOST}"),
    );
    assert!(
        plain.get("transportSocket").is_none(),
        "the subset's port-level tls applies to the subset only"
    );
}

#[test]
fn istio_mutual_without_sni_uses_istio_default_sni() {
    let tls = ClientTlsSettings {
        mode: TlsMode::IstioMutual,
        ..Default::default()
    };
    let context = upstream_tls(&tls, GATEWAY_HOST, 443, "cnn").expect("a TLS context");
    assert_eq!(context.sni, format!("outbound_.443_.cnn_.{GATEWAY_HOST}"));
    let context = upstream_tls(&tls, GATEWAY_HOST, 80, "").expect("a TLS context");
    assert_eq!(context.sni, format!("outbound_.80_._.{GATEWAY_HOST}"));
}

#[test]
fn gateway_istio_mutual_server_terminates_mtls_and_originates_tls() {
    let json = render(
        TLS_ORIGINATION_VIA_GATEWAY,
        "registry-only.yaml",
        &egress_gateway(),
    );
    let listener = find(&json["listeners"], "name", "0.0.0.0_443");
    assert_eq!(
        listener["listenerFilters"][0]["name"],
        "envoy.filters.listener.tls_inspector"
    );
    let rds_name = "https.443.https.istio-egressgateway.default";
    let chain = find(&listener["filterChains"], "name", rds_name);
    assert_eq!(
        chain["filterChainMatch"]["serverNames"],
        serde_json::json!(["edition.cnn.com"])
    );
    let tls = &chain["transportSocket"]["typedConfig"];
    assert_eq!(
        tls["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
    );
    assert_eq!(tls["requireClientCertificate"], true);
    assert_istio_mutual_sds(&tls["commonTlsContext"]);
    // An HTTPS server offers the HTTP ALPN, ISTIO_MUTUAL too, as istiod.
    assert_eq!(
        tls["commonTlsContext"]["alpnProtocols"],
        serde_json::json!(["h2", "http/1.1"])
    );
    let hcm = &chain["filters"][0]["typedConfig"];
    assert_eq!(hcm["rds"]["routeConfigName"], rds_name);

    let route = find(&json["routes"], "name", rds_name);
    let vhost = find(&route["virtualHosts"], "name", "edition.cnn.com:443");
    assert_eq!(
        vhost["routes"][0]["route"]["cluster"],
        "outbound|443||edition.cnn.com"
    );
    let upstream = find(&json["clusters"], "name", "outbound|443||edition.cnn.com");
    let origination = &upstream["transportSocket"]["typedConfig"];
    assert!(origination["sni"].is_null(), "auto_sni: {origination}");
    assert!(
        origination["commonTlsContext"]["validationContext"]["systemRootCerts"].is_object(),
        "SIMPLE: the external server is verified with the system roots"
    );
}

#[test]
fn gateway_istio_mutual_servers_share_a_port_without_duplicate_matches() {
    let json = render_edited(
        TLS_ORIGINATION_VIA_GATEWAY,
        "registry-only.yaml",
        &egress_gateway(),
        |snapshot| {
            let servers = &mut snapshot.gateways[0].spec.servers;
            let mut wildcard = servers[0].clone();
            wildcard.port.name = "https-any".to_string();
            wildcard.hosts = vec!["*/*".to_string()];
            let mut duplicate = wildcard.clone();
            duplicate.port.name = "https-again".to_string();
            servers.push(wildcard);
            servers.push(duplicate);
        },
    );
    let listener = find(&json["listeners"], "name", "0.0.0.0_443");
    let chains = listener["filterChains"].as_array().expect("chains");
    assert_eq!(
        chains.len(),
        2,
        "the second wildcard server is skipped: {chains:#?}"
    );
    let any = find(
        &listener["filterChains"],
        "name",
        "https.443.https-any.istio-egressgateway.default",
    );
    assert!(
        any.get("filterChainMatch").is_none(),
        "a `*` host matches every SNI"
    );
    let route = find(
        &json["routes"],
        "name",
        "https.443.https-any.istio-egressgateway.default",
    );
    find(&route["virtualHosts"], "name", "edition.cnn.com:443");
}
