//! A VirtualService's HTTP routes as istiod writes them for one proxy:
//! which matches apply (source labels and namespace, gateways, port), the
//! route after a catch-all, match translation, headers per destination,
//! mirrors, fault and CORS on the route.

use std::path::Path;

use serde_json::{Value, json};
use shared::node::NodeType;

use crate::config::load::load_str;
use crate::config::model::PathNormalization;
use crate::translate::Proxy;
use crate::translate::test_proxies::{egress_gateway, served_json, sidecar_in};

const SERVICE: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shadow}
spec:
  hosts: [shadow.example.com]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ['*']
";

/// The routes of api.example.com's virtual host on `proxy`'s route `80`,
/// with the VirtualService `spec` (indented as a spec's keys).
fn routes_for(proxy: &Proxy, spec: &str) -> Vec<Value> {
    let text = format!(
        "{SERVICE}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: api}}\nspec:\n  hosts: [api.example.com]\n{spec}"
    );
    let snapshot = load_str(Path::new("vs.yaml"), &text).expect("loads");
    let json = served_json(&snapshot, &[], proxy);
    let route = json["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .find(|route| route["name"] == "80" || route["name"] == "http.80")
        .expect("route 80")
        .clone();
    let host = route["virtualHosts"]
        .as_array()
        .expect("virtual hosts")
        .iter()
        .find(|host| {
            host["domains"]
                .as_array()
                .is_some_and(|d| d.contains(&json!("api.example.com")))
        })
        .expect("api's virtual host")
        .clone();
    host["routes"].as_array().cloned().unwrap_or_default()
}

fn sleep() -> Proxy {
    sidecar_in("default")
}

fn names(routes: &[Value]) -> Vec<&str> {
    routes.iter().filter_map(|r| r["name"].as_str()).collect()
}

#[test]
fn a_match_naming_other_source_labels_or_namespace_is_dropped() {
    let spec = "  http:
  - name: mine
    match:
    - {sourceLabels: {app: sleep}, sourceNamespace: default, uri: {prefix: /a}}
    - {sourceLabels: {app: other}, uri: {prefix: /b}}
    - {sourceNamespace: other, uri: {prefix: /c}}
    route: [{destination: {host: api.example.com}}]
  - name: theirs
    match: [{sourceLabels: {app: other}}]
    route: [{destination: {host: api.example.com}}]
  - name: rest
    route: [{destination: {host: api.example.com}}]
";
    let routes = routes_for(&sleep(), spec);
    assert_eq!(names(&routes), ["mine", "rest"]);
    assert_eq!(routes[0]["match"]["prefix"], "/a");
    let other = Proxy {
        labels: [("app".to_string(), "other".to_string())].into(),
        ..sidecar_in("other")
    };
    // `theirs` matches every request it applies to: nothing follows it.
    let routes = routes_for(&other, spec);
    assert_eq!(names(&routes), ["mine", "mine", "theirs"]);
}

#[test]
fn a_match_naming_gateways_ignores_its_source_labels() {
    let spec = "  gateways: [mesh, istio-system/egress]
  http:
  - name: gw
    match: [{gateways: [istio-system/egress], sourceLabels: {app: nobody}, uri: {prefix: /gw}}]
    route: [{destination: {host: api.example.com}}]
  - name: rest
    route: [{destination: {host: api.example.com}}]
";
    assert_eq!(names(&routes_for(&sleep(), spec)), ["rest"]);
    assert_eq!(names(&routes_for(&egress_gateway(), spec)), ["gw", "rest"]);
}

#[test]
fn nothing_follows_a_catch_all_route() {
    let spec = "  http:
  - name: first
    match: [{uri: {prefix: /}}, {uri: {prefix: /never}}]
    route: [{destination: {host: api.example.com}}]
  - name: second
    route: [{destination: {host: api.example.com}}]
";
    let routes = routes_for(&sleep(), spec);
    assert_eq!(names(&routes), ["first"]);
}

#[test]
fn a_route_is_named_after_its_route_and_match() {
    let spec = "  http:
  - name: api
    match: [{name: v1, uri: {prefix: /v1}}, {uri: {prefix: /v2}}]
    route: [{destination: {host: api.example.com}}]
";
    assert_eq!(names(&routes_for(&sleep(), spec)), ["api.v1", "api"]);
}

#[test]
fn matches_are_translated_as_istiod_writes_them() {
    let spec = "  http:
  - match:
    - uri: {prefix: /a}
      ignoreUriCase: true
      scheme: {exact: https}
      method: {exact: GET}
      authority: {prefix: api}
      headers: {x-b: {exact: '1'}, x-any: {regex: '*'}}
      withoutHeaders: {x-a: {prefix: t}, x-c: {regex: '*'}}
      queryParams: {q: {regex: 'v[0-9]'}, p: {regex: '*'}}
    route: [{destination: {host: api.example.com}}]
";
    let routes = routes_for(&sleep(), spec);
    let m = &routes[0]["match"];
    assert_eq!(m["caseSensitive"], false);
    assert_eq!(
        m["headers"],
        json!([
            {"name": "x-a", "stringMatch": {"prefix": "t"}, "invertMatch": true, "treatMissingHeaderAsEmpty": true},
            {"name": "x-any", "presentMatch": true},
            {"name": "x-b", "stringMatch": {"exact": "1"}},
            {"name": "x-c", "presentMatch": true, "invertMatch": true},
            {"name": ":method", "stringMatch": {"exact": "GET"}},
            {"name": ":authority", "stringMatch": {"prefix": "api"}},
            {"name": ":scheme", "stringMatch": {"exact": "https"}},
        ])
    );
    assert_eq!(
        m["queryParameters"],
        json!([
            {"name": "p", "presentMatch": true},
            {"name": "q", "stringMatch": {"safeRegex": {"regex": "v[0-9]"}}},
        ])
    );
    let plain = routes_for(
        &sleep(),
        "  http:\n  - match: [{uri: {exact: /x}}]\n    route: [{destination: {host: api.example.com}}]\n",
    );
    assert_eq!(plain[0]["match"]["caseSensitive"], true);
}

#[test]
fn headers_of_several_destinations_stay_on_their_weighted_cluster() {
    let spec = "  http:
  - headers: {request: {set: {x-route: r}}}
    route:
    - destination: {host: api.example.com}
      weight: 70
      headers:
        request: {set: {x-to: api, ':authority': api.internal}, remove: [x-drop]}
        response: {add: {x-from: api}}
    - destination: {host: shadow.example.com}
      weight: 30
";
    let routes = routes_for(&sleep(), spec);
    let route = &routes[0];
    assert_eq!(
        route["requestHeadersToAdd"],
        json!([{"header": {"key": "x-route", "value": "r"}, "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD"}])
    );
    let clusters = &route["route"]["weightedClusters"]["clusters"];
    assert_eq!(clusters[0]["name"], "outbound|80||api.example.com");
    assert_eq!(
        clusters[0]["requestHeadersToAdd"],
        json!([{"header": {"key": "x-to", "value": "api"}, "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD"}])
    );
    assert_eq!(clusters[0]["requestHeadersToRemove"], json!(["x-drop"]));
    assert_eq!(
        clusters[0]["responseHeadersToAdd"],
        json!([{"header": {"key": "x-from", "value": "api"}}])
    );
    assert_eq!(clusters[0]["hostRewriteLiteral"], "api.internal");
    assert_eq!(clusters[1]["name"], "outbound|8080||shadow.example.com");
    assert!(clusters[1].get("requestHeadersToAdd").is_none());
}

#[test]
fn a_lone_destinations_headers_follow_the_routes_and_its_authority_rewrites_the_host() {
    let spec = "  http:
  - headers: {request: {add: {x-route: r}}}
    route:
    - destination: {host: api.example.com}
      headers: {request: {set: {x-to: api, host: api.internal}}}
";
    let route = &routes_for(&sleep(), spec)[0];
    let keys: Vec<&str> = route["requestHeadersToAdd"]
        .as_array()
        .expect("headers")
        .iter()
        .filter_map(|h| h["header"]["key"].as_str())
        .collect();
    assert_eq!(keys, ["x-route", "x-to"]);
    assert_eq!(route["route"]["hostRewriteLiteral"], "api.internal");
    let rewritten = routes_for(
        &sleep(),
        "  http:
  - rewrite: {authority: first.internal}
    route:
    - destination: {host: api.example.com}
      headers: {request: {set: {':authority': api.internal}}}
",
    );
    assert_eq!(
        rewritten[0]["route"]["hostRewriteLiteral"],
        "first.internal"
    );
}

#[test]
fn mirrors_fault_and_cors_are_on_the_route() {
    let spec = "  http:
  - route: [{destination: {host: api.example.com}}]
    mirror: {host: shadow.example.com}
    mirrorPercentage: {value: 50}
    fault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}
    corsPolicy: {allowOrigins: [{exact: 'https://a.example.com'}], allowMethods: [GET]}
";
    let route = &routes_for(&sleep(), spec)[0];
    assert_eq!(
        route["route"]["requestMirrorPolicies"],
        json!([{
            "cluster": "outbound|8080||shadow.example.com",
            "runtimeFraction": {"defaultValue": {"numerator": 500000, "denominator": "MILLION"}},
            "traceSampled": false
        }])
    );
    let config = &route["typedPerFilterConfig"];
    assert_eq!(
        config["envoy.filters.http.fault"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "delay": {"fixedDelay": "2s", "percentage": {"numerator": 1000000, "denominator": "MILLION"}}
        })
    );
    assert_eq!(
        config["envoy.filters.http.cors"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
            "allowOriginStringMatch": [{"exact": "https://a.example.com"}],
            "allowMethods": "GET",
            "filterEnabled": {"defaultValue": {"numerator": 100}},
            "forwardNotMatchingPreflights": true
        })
    );
}

#[test]
fn every_connection_manager_is_built_as_istiod_builds_it() {
    let text = format!(
        "{SERVICE}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: api}}\nspec:\n  hosts: [api.example.com]\n  gateways: [mesh, istio-system/egress]\n  http:\n  - route: [{{destination: {{host: api.example.com}}}}]\n"
    );
    let snapshot = load_str(Path::new("vs.yaml"), &text).expect("loads");
    for proxy in [sleep(), egress_gateway()] {
        let json = served_json(&snapshot, &[], &proxy);
        let mut managers = 0;
        for listener in json["listeners"].as_array().expect("listeners") {
            for chain in listener["filterChains"].as_array().into_iter().flatten() {
                for filter in chain["filters"].as_array().into_iter().flatten() {
                    let Some(http_filters) = filter["typedConfig"]["httpFilters"].as_array() else {
                        continue;
                    };
                    managers += 1;
                    let hcm = &filter["typedConfig"];
                    assert_eq!(hcm["streamIdleTimeout"], "0s");
                    // istiod's buildHTTPConnectionManager with the default mesh.
                    assert_eq!(hcm["normalizePath"], true);
                    assert_eq!(hcm["pathWithEscapedSlashesAction"], "KEEP_UNCHANGED");
                    assert!(hcm["mergeSlashes"].is_null());
                    assert_eq!(hcm["upgradeConfigs"], json!([{"upgradeType": "websocket"}]));
                    assert_eq!(
                        hcm["requestIdExtension"]["typedConfig"],
                        json!({
                            "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
                            "useRequestIdForTraceSampling": true
                        })
                    );
                    assert_eq!(hcm["rds"]["configSource"]["initialFetchTimeout"], "0s");
                    // A gateway names itself istio-envoy; a sidecar is Envoy's default.
                    let server_name =
                        (proxy.node_type == NodeType::Router).then_some("istio-envoy");
                    assert_eq!(hcm["serverName"].as_str(), server_name);
                    let names: Vec<&str> = http_filters
                        .iter()
                        .filter_map(|f| f["name"].as_str())
                        .collect();
                    assert_eq!(
                        names,
                        [
                            "envoy.filters.http.fault",
                            "envoy.filters.http.cors",
                            "envoy.filters.http.router"
                        ]
                    );
                    assert_eq!(
                        http_filters[1]["typedConfig"]["@type"],
                        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
                    );
                }
            }
        }
        assert!(managers > 0, "{}: no connection manager", proxy.id);
    }
}

/// The path settings of the sidecar's port-80 connection manager under
/// the mesh's `pathNormalization`.
fn path_settings(normalization: PathNormalization) -> Value {
    let mut snapshot = load_str(Path::new("se.yaml"), SERVICE).expect("loads");
    snapshot.mesh.path_normalization.normalization = normalization;
    let json = served_json(&snapshot, &[], &sleep());
    let listener = json["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .find(|l| l["name"] == "0.0.0.0_80")
        .expect("the port 80 listener")
        .clone();
    let hcm = &listener["filterChains"][0]["filters"][0]["typedConfig"];
    json!({
        "normalizePath": hcm["normalizePath"],
        "mergeSlashes": hcm["mergeSlashes"],
        "escapedSlashes": hcm["pathWithEscapedSlashesAction"],
    })
}

#[test]
fn the_mesh_path_normalization_sets_the_connection_managers_as_istiod() {
    let settings = |normalize: bool, merge: Value, escaped: &str| json!({"normalizePath": normalize, "mergeSlashes": merge, "escapedSlashes": escaped});
    for (mesh, expected) in [
        (
            PathNormalization::Default,
            settings(true, Value::Null, "KEEP_UNCHANGED"),
        ),
        (
            PathNormalization::Base,
            settings(true, Value::Null, "KEEP_UNCHANGED"),
        ),
        (
            PathNormalization::None,
            settings(false, Value::Null, "KEEP_UNCHANGED"),
        ),
        (
            PathNormalization::MergeSlashes,
            settings(true, json!(true), "KEEP_UNCHANGED"),
        ),
        (
            PathNormalization::DecodeAndMergeSlashes,
            settings(true, json!(true), "UNESCAPE_AND_FORWARD"),
        ),
    ] {
        assert_eq!(path_settings(mesh), expected, "{mesh:?}");
    }
}
