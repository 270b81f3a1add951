//! Envoy's gRPC access loggers as istiod adds them with
//! `enableEnvoyAccessLogService`: on every HTTP connection manager and TCP
//! proxy of a sidecar's outbound listeners, never on a gateway's, and
//! absent without the mesh flag.

use std::path::Path;

use serde_json::{Value, json};
use shared::type_url;

use crate::config::ConfigSnapshot;
use crate::config::load::load_str;
use crate::config::model::OutboundMode;
use crate::translate::test_proxies::{egress_gateway, served_json, sidecar_with};
use crate::translate::tests as golden;
use crate::translate::{Proxy, to_json, translate};

/// HTTP on 80, TLS by SNI on 443 (the wildcard listener), TCP on a
/// per-address listener (10.5.0.1:5432), the egress gateway's HTTP server,
/// and a REGISTRY_ONLY root Sidecar with `root_sidecar_annotations`.
fn config(root_sidecar_annotations: &str, enabled: bool) -> ConfigSnapshot {
    let text = format!(
        "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: external, namespace: default}}
spec:
  hosts: [httpbin.org]
  ports: [{{number: 80, name: http, protocol: HTTP}}, {{number: 443, name: tls, protocol: TLS}}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: db, namespace: default}}
spec:
  hosts: [db.example.com]
  addresses: [10.5.0.1]
  ports: [{{number: 5432, name: tcp, protocol: TCP}}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: egress, namespace: istio-system}}
spec:
  selector: {{istio: egressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: [httpbin.org]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
  annotations: {{{root_sidecar_annotations}}}
spec:
  outboundTrafficPolicy: {{mode: REGISTRY_ONLY}}
"
    );
    let mut snapshot = load_str(Path::new("als.yaml"), &text).expect("loads");
    snapshot.mesh.outbound_traffic_policy.mode = OutboundMode::AllowAny;
    snapshot.mesh.enable_envoy_access_log_service = enabled;
    snapshot
}

fn listeners(snapshot: &ConfigSnapshot, proxy: &Proxy) -> Vec<Value> {
    let resources = translate(snapshot, &[], proxy).into_typed();
    let json = to_json(&resources, &[type_url::LISTENER]).expect("converts");
    json["listeners"].as_array().expect("listeners").clone()
}

/// Every (listener, chain name, network filter's typed config) of `listeners`.
fn filters(listeners: &[Value]) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for listener in listeners {
        let name = listener["name"].as_str().expect("name").to_string();
        let chains = listener["filterChains"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(Some(&listener["defaultFilterChain"]).filter(|c| !c.is_null()));
        for chain in chains {
            let chain_name = chain["name"].as_str().unwrap_or_default().to_string();
            for filter in chain["filters"].as_array().expect("filters") {
                found.push((
                    name.clone(),
                    chain_name.clone(),
                    filter["typedConfig"].clone(),
                ));
            }
        }
    }
    found
}

fn logger_names(config: &Value) -> Vec<String> {
    config["accessLog"]
        .as_array()
        .expect("access logs")
        .iter()
        .map(|log| log["name"].as_str().expect("name").to_string())
        .collect()
}

/// The custom tags of the gRPC logger of a filter's config.
fn grpc_tags(config: &Value) -> Value {
    config["accessLog"][1]["typedConfig"]["commonConfig"]["customTags"].clone()
}

fn literal(mark: &str) -> Value {
    json!([{"tag": "egress_policy", "literal": {"value": mark}}])
}

#[test]
fn without_the_mesh_flag_only_stdout_logs() {
    let all = filters(&listeners(&config("", false), &sidecar_with(&[])));
    assert!(!all.is_empty());
    for (listener, chain, config) in all {
        assert_eq!(
            logger_names(&config),
            ["envoy.access_loggers.file"],
            "{listener} {chain}"
        );
    }
}

#[test]
fn every_outbound_filter_streams_to_the_access_log_service() {
    let all = filters(&listeners(&config("", true), &sidecar_with(&[])));
    let mut kinds = std::collections::BTreeSet::new();
    for (listener, chain, config) in &all {
        let names = logger_names(config);
        let grpc = if config["@type"]
            .as_str()
            .is_some_and(|t| t.ends_with("HttpConnectionManager"))
        {
            "envoy.access_loggers.http_grpc"
        } else {
            "envoy.access_loggers.tcp_grpc"
        };
        kinds.insert(grpc);
        assert_eq!(
            names,
            ["envoy.access_loggers.file", grpc],
            "{listener} {chain}"
        );
        let common = &config["accessLog"][1]["typedConfig"]["commonConfig"];
        assert_eq!(common["logName"], "egress");
        assert_eq!(common["transportApiVersion"], "V3");
        assert_eq!(
            common["grpcService"]["envoyGrpc"]["clusterName"],
            "envoy_accesslog_service"
        );
    }
    assert_eq!(kinds.len(), 2, "HTTP and TCP filters: {all:#?}");
}

#[test]
fn http_entries_take_the_mark_of_their_route() {
    let all = filters(&listeners(&config("", true), &sidecar_with(&[])));
    let (_, _, hcm) = all
        .iter()
        .find(|(listener, ..)| listener == "0.0.0.0_80")
        .expect("the HTTP listener");
    assert_eq!(
        grpc_tags(hcm),
        json!([{
            "tag": "egress_policy",
            "metadata": {
                "kind": {"route": {}},
                "metadataKey": {"key": "istio", "path": [{"key": "egress_policy"}]},
                "defaultValue": "-"
            }
        }])
    );
}

#[test]
fn tcp_fall_through_entries_carry_the_chains_mark() {
    for (annotations, mark) in [
        ("", "blocked"),
        ("istio.io/dry-run: \"true\"", "would_block"),
    ] {
        let all = filters(&listeners(&config(annotations, true), &sidecar_with(&[])));
        for listener in ["virtualOutbound", "0.0.0.0_443", "10.5.0.1_5432"] {
            let marks: Vec<(String, Value)> = all
                .iter()
                .filter(|(l, ..)| l == listener)
                .map(|(_, chain, config)| (chain.clone(), grpc_tags(config)))
                .collect();
            let fall_through = marks
                .iter()
                .find(|(chain, _)| chain == "PassthroughFilterChain")
                .map(|(_, tags)| tags.clone());
            if listener == "10.5.0.1_5432" {
                // The service's chain matches everything: no fall-through.
                assert_eq!(fall_through, None, "{listener}");
            } else {
                assert_eq!(fall_through, Some(literal(mark)), "{listener}");
            }
            for (chain, tags) in marks.iter().filter(|(c, _)| c != "PassthroughFilterChain") {
                assert_eq!(*tags, literal("-"), "{listener} {chain}");
            }
        }
    }
}

#[test]
fn gateways_get_no_grpc_access_log() {
    let all = filters(&listeners(&config("", true), &egress_gateway()));
    assert!(!all.is_empty());
    for (listener, chain, config) in all {
        assert!(
            !logger_names(&config).iter().any(|n| n.contains("grpc")),
            "{listener} {chain}"
        );
    }
}

/// The whole xDS of a dry-run sidecar with the access log service, kept as
/// a golden file (which the agent's own tests also convert).
#[test]
fn a_dry_run_sidecar_with_the_access_log_service_matches_its_golden_file() {
    let snapshot = config("istio.io/dry-run: \"true\"", true);
    let json = served_json(&snapshot, &[], &sidecar_with(&[]));
    golden::check_golden("access-log-service/dry-run/sidecar", &json);
}
