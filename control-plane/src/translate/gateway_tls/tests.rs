//! Gateway servers that terminate TLS, `httpsRedirect`, and DestinationRule `credentialName`, as istiod translates them.

use std::path::Path;

use serde_json::Value;
use shared::type_url;

use crate::config::error::Severity;
use crate::config::load::load_str;
use crate::config::validate;
use crate::translate::test_proxies::egress_gateway;
use crate::translate::{to_json, translate};

/// The xDS the egress gateway gets for `yaml`, which must have no error
/// (warnings, such as a credential's Secret not given here, are fine).
fn gateway_xds(yaml: &str) -> Value {
    let snapshot = load_str(Path::new("cfg.yaml"), yaml).unwrap_or_else(|e| panic!("loads: {e}"));
    let mut errors = validate(&snapshot);
    errors.retain(|error| error.severity() == Severity::Error);
    assert!(errors.is_empty(), "{errors:#?}");
    let typed = translate(&snapshot, &[], &egress_gateway()).into_typed();
    to_json(
        &typed,
        &[type_url::CLUSTER, type_url::LISTENER, type_url::ROUTE],
    )
    .expect("JSON")
}

fn validation_errors(yaml: &str) -> Vec<String> {
    let snapshot = load_str(Path::new("cfg.yaml"), yaml).unwrap_or_else(|e| panic!("loads: {e}"));
    validate(&snapshot)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn named<'a>(xds: &'a Value, kind: &str, name: &str) -> &'a Value {
    xds[kind]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .unwrap_or_else(|| panic!("no {kind} {name} in {xds:#}"))
}

fn gateway(server: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: istio-system}}\n\
         spec:\n  selector: {{istio: egressgateway}}\n  servers:\n{server}---\n\
         apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: nginx}}\n\
         spec:\n  hosts: [my-nginx.mesh-external.svc.cluster.local]\n  ports:\n  - {{number: 443, name: tls, protocol: TLS}}\n  - {{number: 80, name: http, protocol: HTTP}}\n  resolution: DNS\n"
    )
}

const HTTPS_VS: &str = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: istio-system}\n\
    spec:\n  hosts: [my-nginx.mesh-external.svc.cluster.local]\n  gateways: [gw]\n  http:\n  - route:\n    - destination: {host: my-nginx.mesh-external.svc.cluster.local, port: {number: 80}}\n";

#[test]
fn a_simple_server_with_a_credential_serves_its_secret_over_ads_and_routes_https() {
    let xds = gateway_xds(
        &(gateway(
            "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [my-nginx.mesh-external.svc.cluster.local]\n    tls: {mode: SIMPLE, credentialName: nginx-server-certs}\n",
        ) + HTTPS_VS),
    );
    let listener = named(&xds, "listeners", "0.0.0.0_443");
    let chain = &listener["filterChains"][0];
    assert_eq!(
        chain["filterChainMatch"]["serverNames"][0],
        "my-nginx.mesh-external.svc.cluster.local"
    );
    let tls = &chain["transportSocket"]["typedConfig"];
    let common = &tls["commonTlsContext"];
    let sds = &common["tlsCertificateSdsSecretConfigs"][0];
    assert_eq!(sds["name"], "kubernetes://nginx-server-certs");
    assert!(sds["sdsConfig"]["ads"].is_object(), "{sds:#}");
    assert_eq!(sds["sdsConfig"]["resourceApiVersion"], "V3");
    assert_eq!(tls["requireClientCertificate"], false);
    assert_eq!(
        common["alpnProtocols"],
        serde_json::json!(["h2", "http/1.1"])
    );
    assert!(
        common.get("combinedValidationContext").is_none(),
        "{common:#}"
    );
    let route_name = "https.443.https.gw.istio-system";
    assert_eq!(
        chain["filters"][0]["typedConfig"]["rds"]["routeConfigName"],
        route_name
    );
    let route = named(&xds, "routes", route_name);
    assert_eq!(
        route["virtualHosts"][0]["routes"][0]["route"]["cluster"],
        "outbound|80||my-nginx.mesh-external.svc.cluster.local"
    );
}

#[test]
fn a_mutual_server_with_a_credential_verifies_clients_with_its_cacert() {
    let xds = gateway_xds(
        &(gateway(
            "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: MUTUAL, credentialName: cred}\n",
        ) + HTTPS_VS),
    );
    let tls = &named(&xds, "listeners", "0.0.0.0_443")["filterChains"][0]["transportSocket"]["typedConfig"];
    assert_eq!(tls["requireClientCertificate"], true);
    let combined = &tls["commonTlsContext"]["combinedValidationContext"];
    assert_eq!(
        combined["validationContextSdsSecretConfig"]["name"],
        "kubernetes://cred-cacert"
    );
}

#[test]
fn a_mutual_server_with_files_reads_the_certificate_key_and_ca_from_them() {
    let xds = gateway_xds(
        &(gateway(
            "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n    tls:\n      mode: MUTUAL\n      serverCertificate: /etc/certs/cert.pem\n      privateKey: /etc/certs/key.pem\n      caCertificates: /etc/certs/ca.pem\n",
        ) + HTTPS_VS),
    );
    let common = &named(&xds, "listeners", "0.0.0.0_443")["filterChains"][0]["transportSocket"]["typedConfig"]
        ["commonTlsContext"];
    let cert = &common["tlsCertificates"][0];
    assert_eq!(cert["certificateChain"]["filename"], "/etc/certs/cert.pem");
    assert_eq!(cert["privateKey"]["filename"], "/etc/certs/key.pem");
    assert_eq!(
        common["validationContext"]["trustedCa"]["filename"],
        "/etc/certs/ca.pem"
    );
}

#[test]
fn https_redirect_requires_tls_on_every_host_of_the_server() {
    let xds = gateway_xds(
        &(gateway(
            "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [my-nginx.mesh-external.svc.cluster.local, other.example.com]\n    tls: {httpsRedirect: true}\n",
        ) + HTTPS_VS),
    );
    let hosts = named(&xds, "routes", "http.80")["virtualHosts"]
        .as_array()
        .expect("virtual hosts")
        .clone();
    assert_eq!(hosts.len(), 2, "{hosts:#?}");
    for host in &hosts {
        assert_eq!(host["requireTls"], "ALL", "{host:#}");
    }
    let redirect_only = hosts
        .iter()
        .find(|h| h["domains"][0] == "other.example.com")
        .expect("a host without a VirtualService still redirects");
    assert!(redirect_only.get("routes").is_none(), "{redirect_only:#}");
}

#[test]
fn a_tls_server_that_terminates_proxies_tcp_by_the_tcp_routes() {
    let vs = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: istio-system}\n\
        spec:\n  hosts: [my-nginx.mesh-external.svc.cluster.local]\n  gateways: [gw]\n  tcp:\n  - match: [{port: 443}]\n    route:\n    - destination: {host: my-nginx.mesh-external.svc.cluster.local, port: {number: 443}}\n";
    let xds = gateway_xds(
        &(gateway(
            "  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: [my-nginx.mesh-external.svc.cluster.local]\n    tls: {mode: SIMPLE, credentialName: cred}\n",
        ) + vs),
    );
    let chain = &named(&xds, "listeners", "0.0.0.0_443")["filterChains"][0];
    assert_eq!(
        chain["filters"][0]["typedConfig"]["cluster"],
        "outbound|443||my-nginx.mesh-external.svc.cluster.local"
    );
    // istiod offers the HTTP ALPN on every server that terminates TLS.
    let common = &chain["transportSocket"]["typedConfig"]["commonTlsContext"];
    assert_eq!(
        common["alpnProtocols"],
        serde_json::json!(["h2", "http/1.1"])
    );
}

/// The ALPN of the listener's first chain for a server on 443.
fn server_alpn(server: &str, vs: &str) -> Value {
    let xds = gateway_xds(&(gateway(server) + vs));
    named(&xds, "listeners", "0.0.0.0_443")["filterChains"][0]["transportSocket"]["typedConfig"]
        ["commonTlsContext"]["alpnProtocols"]
        .clone()
}

#[test]
fn istio_mutual_offers_peer_exchange_first_only_on_tcp_and_tls_servers() {
    let tcp_vs = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: istio-system}\n\
        spec:\n  hosts: [my-nginx.mesh-external.svc.cluster.local]\n  gateways: [gw]\n  tcp:\n  - match: [{port: 443}]\n    route:\n    - destination: {host: my-nginx.mesh-external.svc.cluster.local, port: {number: 443}}\n";
    for protocol in ["TLS", "TCP"] {
        assert_eq!(
            server_alpn(
                &format!(
                    "  - port: {{number: 443, name: p, protocol: {protocol}}}\n    hosts: [my-nginx.mesh-external.svc.cluster.local]\n    tls: {{mode: ISTIO_MUTUAL}}\n"
                ),
                tcp_vs,
            ),
            serde_json::json!(["istio-peer-exchange", "h2", "http/1.1"]),
            "{protocol}"
        );
    }
    assert_eq!(
        server_alpn(
            "  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: ['*']\n    tls: {mode: ISTIO_MUTUAL}\n",
            HTTPS_VS,
        ),
        serde_json::json!(["h2", "http/1.1"])
    );
}

#[test]
fn a_destination_rule_credential_gives_the_client_certificate_and_ca_over_ads() {
    let dr = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dr, namespace: istio-system}\n\
        spec:\n  host: my-nginx.mesh-external.svc.cluster.local\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 443}\n      tls: {mode: MUTUAL, credentialName: client-credential, sni: my-nginx.mesh-external.svc.cluster.local}\n";
    let xds = gateway_xds(
        &(gateway("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*']\n") + dr),
    );
    let cluster = named(
        &xds,
        "clusters",
        "outbound|443||my-nginx.mesh-external.svc.cluster.local",
    );
    let tls = &cluster["transportSocket"]["typedConfig"];
    assert_eq!(tls["sni"], "my-nginx.mesh-external.svc.cluster.local");
    let common = &tls["commonTlsContext"];
    assert_eq!(
        common["tlsCertificateSdsSecretConfigs"][0]["name"],
        "kubernetes://client-credential"
    );
    assert_eq!(
        common["combinedValidationContext"]["validationContextSdsSecretConfig"]["name"],
        "kubernetes://client-credential-cacert"
    );
    assert!(common.get("tlsCertificates").is_none(), "{common:#}");
}

#[test]
fn terminating_modes_need_what_they_use_and_unsupported_fields_are_named() {
    let errors = validation_errors(&gateway(
        "  - port: {number: 443, name: a, protocol: HTTPS}\n    hosts: [a.example.com]\n    tls: {mode: SIMPLE}\n\
         \x20 - port: {number: 443, name: b, protocol: HTTPS}\n    hosts: [b.example.com]\n    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}\n\
         \x20 - port: {number: 443, name: c, protocol: HTTPS}\n    hosts: [c.example.com]\n    tls: {mode: ISTIO_MUTUAL, credentialName: cred}\n\
         \x20 - port: {number: 443, name: d, protocol: HTTPS}\n    hosts: [d.example.com]\n    tls: {mode: SIMPLE, credentialName: cred, subjectAltNames: [x]}\n",
    ));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0].contains("spec.servers[0].tls.mode: tls mode SIMPLE needs a certificate"));
    assert!(errors[1].contains(
        "spec.servers[1].tls.caCertificates: tls mode MUTUAL verifies client certificates"
    ));
    assert!(errors[2].contains("spec.servers[2].tls.credentialName: tls mode ISTIO_MUTUAL uses the gateway's mesh certificate"));
    assert!(
        errors[3].contains("spec.servers[3].tls.subjectAltNames: subjectAltNames is not supported"),
        "{}",
        errors[3]
    );
}
