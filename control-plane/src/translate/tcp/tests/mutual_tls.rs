//! The MongoDB egress blog post's mutual TLS variant: the sidecar's tcp
//! route to the egress gateway originates ISTIO_MUTUAL on port 443, the
//! gateway's TLS server terminates it and proxies to the database.

use serde_json::{Value, json};

use crate::config::model::OutboundMode;
use crate::test_yaml::MongoThroughGateway;

use super::{check_golden, cluster_of, egress_gateway, listener, render, sidecar};

/// The services the post assumes, then its "mutual TLS" YAML as published
/// (with its variables filled in).
fn mongo_mutual_tls() -> String {
    MongoThroughGateway {
        gateway_ports: &["{number: 443, name: tls, protocol: TLS}"],
        hop: (443, "tls", "TLS"),
        server_tls: "    tls:
      mode: MUTUAL
      serverCertificate: /etc/certs/cert-chain.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/root-cert.pem
",
        subset_policy: "    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 443
        tls:
          mode: ISTIO_MUTUAL
          sni: my-mongo.tcp.svc
",
    }
    .yaml()
}

fn cluster<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["clusters"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

#[test]
fn the_sidecar_originates_istio_mutual_to_the_gateway_on_its_tcp_route() {
    let json = render(&mongo_mutual_tls(), OutboundMode::RegistryOnly, &sidecar());
    check_golden("mongo-through-gateway-mutual-tls/sidecar", &json);
    let l = listener(&json["listeners"], "203.0.113.7_27017");
    let to_gateway = "outbound|443|mongo|istio-egressgateway.istio-system.svc.cluster.local";
    assert_eq!(cluster_of(&l["filterChains"][0]), to_gateway);
    let socket = &cluster(&json, to_gateway)["transportSocket"];
    assert_eq!(socket["name"], "envoy.transport_sockets.tls");
    let tls = &socket["typedConfig"];
    assert_eq!(tls["sni"], "my-mongo.tcp.svc");
    let common = &tls["commonTlsContext"];
    // istiod's ALPN for ISTIO_MUTUAL: the TCP metadata exchange, then istio.
    assert_eq!(
        common["alpnProtocols"],
        json!(["istio-peer-exchange", "istio"])
    );
    assert_eq!(
        common["tlsCertificateSdsSecretConfigs"][0]["name"],
        "default"
    );
    assert_eq!(common["validationContextSdsSecretConfig"]["name"], "ROOTCA");
}

#[test]
fn the_gateway_terminates_mutual_tls_and_proxies_to_the_database() {
    let json = render(
        &mongo_mutual_tls(),
        OutboundMode::RegistryOnly,
        &egress_gateway(),
    );
    // No golden file: the agent reads the post's certificate files
    // (/etc/certs) when it converts the listener.
    let l = listener(&json["listeners"], "0.0.0.0_443");
    let chain = &l["filterChains"][0];
    assert_eq!(cluster_of(chain), "outbound|27017||my-mongo.tcp.svc");
    let tls = &chain["transportSocket"]["typedConfig"];
    assert_eq!(tls["requireClientCertificate"], true);
    assert_eq!(
        tls["commonTlsContext"]["tlsCertificates"][0]["certificateChain"]["filename"],
        "/etc/certs/cert-chain.pem"
    );
}
