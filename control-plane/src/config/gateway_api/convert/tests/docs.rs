//! The docs' Gateway API tabs against their classic tabs: loaded,
//! converted, and translated for the `sleep` sidecar and for the gateway
//! proxy, they give the same xDS.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{gateway_api_proxy, xds};
use crate::config::load::load_str;
use crate::config::{Checked, check};
use crate::test_yaml::egress_gateway_service;
use crate::translate::proxy::Proxy;
use crate::translate::test_proxies::{egress_gateway, sidecar_in};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// A snippet of the integration tests' docs fixtures (`<task>/<snippet>`,
/// the Gateway API tabs under `<task>/gateway-api/`).
fn docs_snippet(task: &str, snippet: &str) -> String {
    let path = repo()
        .join("integration-tests/fixtures/docs")
        .join(task)
        .join(format!("{snippet}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A classic tab's snippet.
fn classic(task: &str, snippet: &str) -> String {
    docs_snippet(task, snippet)
}

/// A Gateway API tab's snippet.
fn gateway_api(task: &str, snippet: &str) -> String {
    docs_snippet(&format!("{task}/gateway-api"), snippet)
}

/// The documents, loaded as one directory and checked; every one valid.
fn served(documents: &[String]) -> Checked {
    let text = documents.join("\n---\n");
    let snapshot = load_str(Path::new("docs.yaml"), &text).expect("the snippets load");
    let checked = check(snapshot);
    assert!(checked.errors.is_empty(), "{:#?}", checked.errors);
    checked
}

/// `value` with what users cannot see of the difference between the two
/// tabs taken out: each `(classic, gateway_api)` name replaced (the gateway's
/// Service: Istio's install names it `istio-egressgateway` in
/// `istio-system`, the Gateway API `<gateway>-istio` beside the Gateway;
/// the classic tab's DestinationRule subset selects every endpoint of it),
/// route names dropped (Istio names a Gateway API route
/// `<namespace>.<route>.<rule>`, a classic one by its VirtualService),
/// `caseSensitive: true` dropped (Envoy's default, written for the classic
/// tab's port-only match), a virtual host's bare short-name domains dropped
/// (a Service gets them from proxies of its own namespace, and the
/// Gateway API's is beside the sidecar), the Istio resource a cluster or
/// route names in its metadata dropped (each tab writes its own), and
/// resources and virtual hosts sorted by name, the same cluster (or its
/// endpoints) named twice kept once.
fn normalized(value: &Value, renames: &[(&str, &str)]) -> Value {
    let mut text = value.to_string();
    for (from, to) in renames {
        text = text.replace(from, to);
    }
    let mut value: Value = serde_json::from_str(&text).expect("JSON");
    tidy(&mut value);
    value
}

fn tidy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("route") || map.contains_key("redirect") {
                map.remove("name");
            }
            if map.get("caseSensitive") == Some(&Value::Bool(true)) {
                map.remove("caseSensitive");
            }
            // An HTTPRoute's routes answer 500 for a missing cluster, the
            // classic tab's 503: the same when every cluster is there.
            map.remove("clusterNotFoundResponseCode");
            drop_config_name(map);
            if let Some(Value::Array(domains)) = map.get_mut("domains") {
                domains.retain(|domain| domain.as_str().is_some_and(|d| d.contains('.')));
                domains.sort_by_key(Value::to_string);
                domains.dedup();
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => {
            items.iter_mut().for_each(tidy);
            let name = |item: &Value| {
                (item.get("name").or_else(|| item.get("clusterName"))).map(Value::to_string)
            };
            if items.iter().all(|item| name(item).is_some()) {
                items.sort_by_key(|item| name(item));
                items.dedup();
            }
        }
        _ => {}
    }
}

/// `metadata.filterMetadata.istio.config` taken out of `map`, and what it
/// leaves empty.
fn drop_config_name(map: &mut serde_json::Map<String, Value>) {
    let Some(Value::Object(metadata)) = map.get_mut("metadata") else {
        return;
    };
    if let Some(Value::Object(filter)) = metadata.get_mut("filterMetadata") {
        if let Some(Value::Object(istio)) = filter.get_mut("istio") {
            istio.remove("config");
            if istio.is_empty() {
                filter.remove("istio");
            }
        }
        if filter.is_empty() {
            metadata.remove("filterMetadata");
        }
    }
    if metadata.is_empty() {
        map.remove("metadata");
    }
}

/// `xds` without the clusters and endpoints whose name `drop` picks.
fn leave_out(xds: &mut Value, drop: impl Fn(&str) -> bool) {
    for kind in ["clusters", "endpoints"] {
        if let Some(Value::Array(items)) = xds.get_mut(kind) {
            items.retain(|item| {
                let name = item.get("name").or_else(|| item.get("clusterName"));
                !name.and_then(Value::as_str).is_some_and(&drop)
            });
        }
    }
}

/// The classic tab and the Gateway API tab give the sidecar and the
/// gateway proxy the same xDS, but for `renames`.
fn assert_same_xds(classic: &Checked, api: &Checked, gateway: &str, renames: &[(&str, &str)]) {
    assert_same_xds_but_unrouted(classic, api, gateway, renames, &[]);
}

/// As [`assert_same_xds`], the classic tab's clusters named `unrouted`
/// (that no route of it sends to) left out first.
fn assert_same_xds_but_unrouted(
    classic: &Checked,
    api: &Checked,
    gateway: &str,
    renames: &[(&str, &str)],
    unrouted: &[&str],
) {
    let api_gateway = gateway_api_proxy(gateway);
    let sidecar = sidecar_in("default");
    for (who, classic_proxy, api_proxy) in [
        ("sidecar", &sidecar, &sidecar),
        ("gateway", &egress_gateway(), &api_gateway),
    ] {
        let mut classic_xds = xds(classic, &egress_gateway(), classic_proxy);
        leave_out(&mut classic_xds, |name| unrouted.contains(&name));
        // The gateway's endpoints name its workload: each tab's deployment.
        let workload = |proxy: &Proxy| {
            proxy
                .as_workload()
                .map(|workload| workload.endpoint_workload().encode())
                .expect("the gateway has an address")
        };
        let (classic_workload, api_workload) =
            (workload(&egress_gateway()), workload(&api_gateway));
        let renames = [
            &[(classic_workload.as_str(), api_workload.as_str())],
            renames,
        ]
        .concat();
        let mut classic_xds = normalized(&classic_xds, &renames);
        let mut api_xds = normalized(&xds(api, &api_gateway, api_proxy), &[]);
        if who == "gateway" {
            // The gateway proxy routes nothing to its own Service.
            let own = format!("{gateway}-istio.default.svc.cluster.local");
            leave_out(&mut classic_xds, |name| name.ends_with(&own));
            leave_out(&mut api_xds, |name| name.ends_with(&own));
        }
        for kind in ["clusters", "endpoints", "listeners", "routes"] {
            if std::env::var_os("GWAPI_DUMP").is_some() {
                for (tab, xds) in [("classic", &classic_xds), ("api", &api_xds)] {
                    let text = serde_json::to_string_pretty(&xds[kind]).expect("JSON");
                    std::fs::write(format!("/tmp/gwapi-{who}-{kind}-{tab}.json"), text)
                        .expect("dump");
                }
            }
            assert_eq!(
                serde_json::to_string_pretty(&classic_xds[kind]).expect("JSON"),
                serde_json::to_string_pretty(&api_xds[kind]).expect("JSON"),
                "{who}: {kind}"
            );
        }
    }
}

const CNN_GATEWAY_SERVICE: (&str, &str) = (
    "istio-egressgateway.istio-system",
    "cnn-egress-gateway-istio.default",
);

#[test]
fn egress_gateway_http_tab_translates_as_the_classic_tab() {
    let classic_tab = served(&[
        classic("egress-gateway", "egress_gateway_for_http_traffic_1"),
        egress_gateway_service(&["{number: 80, name: http, protocol: HTTP}"]),
        classic("egress-gateway", "egress_gateway_for_http_traffic_3"),
        classic("egress-gateway", "egress_gateway_for_http_traffic_5"),
    ]);
    let api_tab = served(&[
        classic("egress-gateway", "egress_gateway_for_http_traffic_1"),
        gateway_api("egress-gateway", "egress_gateway_for_http_traffic_4"),
        gateway_api("egress-gateway", "egress_gateway_for_http_traffic_6"),
    ]);
    let renames = [("outbound|80|cnn|", "outbound|80||"), CNN_GATEWAY_SERVICE];
    assert_same_xds(&classic_tab, &api_tab, "cnn-egress-gateway", &renames);
}

#[test]
fn egress_gateway_https_tab_translates_as_the_classic_tab() {
    let classic_tab = served(&[
        classic("egress-gateway", "egress_gateway_for_https_traffic_1"),
        egress_gateway_service(&["{number: 443, name: tls, protocol: TLS}"]),
        classic("egress-gateway", "egress_gateway_for_https_traffic_3"),
    ]);
    let api_tab = served(&[
        classic("egress-gateway", "egress_gateway_for_https_traffic_1"),
        gateway_api("egress-gateway", "egress_gateway_for_https_traffic_4"),
    ]);
    let renames = [("outbound|443|cnn|", "outbound|443||"), CNN_GATEWAY_SERVICE];
    assert_same_xds(&classic_tab, &api_tab, "cnn-egress-gateway", &renames);
}

#[test]
fn wildcard_egress_hosts_tab_translates_as_the_classic_tab() {
    let classic_tab = served(&[
        classic(
            "wildcard-egress-hosts",
            "configure_direct_traffic_to_a_wildcard_host_1",
        ),
        egress_gateway_service(&["{number: 443, name: tls, protocol: TLS}"]),
        classic(
            "wildcard-egress-hosts",
            "configure_egress_gateway_traffic_to_a_wildcard_host_1",
        ),
        classic(
            "wildcard-egress-hosts",
            "configure_egress_gateway_traffic_to_a_wildcard_host_3",
        ),
    ]);
    let api_tab = served(&[
        gateway_api(
            "wildcard-egress-hosts",
            "configure_egress_gateway_traffic_to_a_wildcard_host_2",
        ),
        classic(
            "wildcard-egress-hosts",
            "configure_egress_gateway_traffic_to_a_wildcard_host_3",
        ),
    ]);
    let renames = [
        ("outbound|443|wikipedia|", "outbound|443||"),
        (
            "istio-egressgateway.istio-system",
            "wikipedia-egress-gateway-istio.default",
        ),
    ];
    assert_same_xds(&classic_tab, &api_tab, "wikipedia-egress-gateway", &renames);
}

#[test]
fn egress_gateway_tls_origination_tab_translates_as_the_classic_tab() {
    let task = "egress-gateway-tls-origination";
    let classic_tab = served(&[
        classic(task, "perform_tls_origination_with_an_egress_gateway_1"),
        egress_gateway_service(&["{number: 80, name: https, protocol: HTTPS}"]),
        classic(task, "perform_tls_origination_with_an_egress_gateway_3"),
        classic(task, "perform_tls_origination_with_an_egress_gateway_4"),
    ]);
    let api_tab = served(&[
        classic(task, "perform_tls_origination_with_an_egress_gateway_1"),
        gateway_api(task, "perform_tls_origination_with_an_egress_gateway_4"),
        gateway_api(task, "perform_tls_origination_with_an_egress_gateway_6"),
        gateway_api(task, "perform_tls_origination_with_an_egress_gateway_7"),
    ]);
    // The gateway's identity: Istio's install runs it as
    // istio-egressgateway-service-account, the Gateway API as <name>-istio;
    // and the name of its HTTPS route configuration, made of the server's
    // port name and Gateway's name.
    let renames = [
        (
            "https.80.https-port-for-tls-origination.istio-egressgateway.default",
            "https.80.https-listener-for-tls-origination.cnn-egress-gateway-istio-autogenerated-k8s-gateway-https-listener-for-tls-origination.default",
        ),
        ("outbound|80|cnn|", "outbound|80||"),
        CNN_GATEWAY_SERVICE,
        (
            "ns/istio-system/sa/istio-egressgateway-service-account",
            "ns/default/sa/cnn-egress-gateway-istio",
        ),
    ];
    // The classic tab's TLS to the gateway is its subset's; the gateway's
    // Service without the subset is not routed to.
    let unrouted = ["outbound|80||istio-egressgateway.istio-system.svc.cluster.local"];
    assert_same_xds_but_unrouted(
        &classic_tab,
        &api_tab,
        "cnn-egress-gateway",
        &renames,
        &unrouted,
    );
}
