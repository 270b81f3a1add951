//! Parity: Istio's egress tasks give the same results through our agent as
//! through real Envoy 1.40, on the same control plane with the same YAML:
//! the table below, run by [`integration_tests::parity`], once with the
//! agent as the app's sidecar (and egress gateway), then with Envoy, each
//! as in a pod behind istio-init's capture.
//!
//! Each run records the status (or curl's exit code), the error body, the
//! `x-envoy-*` response headers of a 200, what the external server saw
//! (decorator, SNI, which hop connected) and each proxy's access log (code,
//! flags, upstream). The agent's record must equal Envoy's, and both must
//! equal what Istio gives. The table is printed (`--nocapture`) and is part
//! of any failure.
//!
//! Needs root (namespaces, iptables): see `netns::require_root`.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use integration_tests::docs_tasks::{GatewayPorts, istio_gateway_service};
use integration_tests::fixtures::{
    BAIDU_SERVICE_ENTRY, HTTPBIN_SERVICE_ENTRY, HTTPBIN_TIMEOUT, http_via_gateway,
    https_via_gateway, mutual_tls_via_gateway, tls_origination,
};
use integration_tests::netns;
use integration_tests::parity::{self, Outcome, Ready, Request, SIDECAR, Scenario};
use integration_tests::tls::TestCa;

/// Envoy's response header with the upstream's time.
const UPSTREAM_SERVICE_TIME: &str = "x-envoy-upstream-service-time";
const GATEWAY_HTTP_CLUSTER: &str =
    "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local";
const GATEWAY_TLS_CLUSTER: &str =
    "outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local";

/// What scenario 12's sidecar logs for a GET of http://httpbin.org/headers
/// as a JSON object: Istio's fields in key order, by value, or by type for
/// those that vary from run to run.
const ISTIO_JSON_FIELDS: &[&str] = &[
    r#"authority="httpbin.org""#,
    "bytes_received=0",
    "bytes_sent:number",
    "connection_termination_details=null",
    "downstream_local_address:string",
    "downstream_remote_address:string",
    "duration:number",
    r#"method="GET""#,
    r#"path="/headers""#,
    r#"protocol="HTTP/1.1""#,
    "request_id:string",
    "requested_server_name=null",
    "response_code=200",
    r#"response_code_details="via_upstream""#,
    r#"response_flags="-""#,
    r#"route_name="default""#,
    "start_time:string",
    r#"upstream_cluster="outbound|80||httpbin.org""#,
    "upstream_host:string",
    "upstream_local_address:string",
    "upstream_service_time:string",
    "upstream_transport_failure_reason=null",
    "user_agent:string",
    "x_forwarded_for=null",
];

/// The walkthrough's egress scenarios, in its order, through Istio's egress
/// gateway Service (its pod listening on `targets`).
fn scenarios(targets: GatewayPorts, ca_cert: &Path) -> Result<Vec<Scenario>> {
    let httpbin = || ("httpbin-ext.yaml", HTTPBIN_SERVICE_ENTRY.to_string());
    let gateway_service = istio_gateway_service();
    let cnn_via_gateway = || {
        vec![
            gateway_service.clone(),
            ("cnn-gateway-http.yaml", http_via_gateway(80)),
        ]
    };
    let http_via_the_gateway = |name| {
        Scenario::new(
            name,
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:80/*")
                .through_gateway("200 -"),
        )
        .files(cnn_via_gateway())
        .through_gateway("80", GATEWAY_HTTP_CLUSTER, targets.http)
    };
    let registry_only = || Ready::Lacks("virtualOutbound", "\"PassthroughCluster\"");
    Ok(vec![
        Scenario::new(
            "1 ALLOW_ANY: HTTPS passes through",
            Request::head("https://www.baidu.com"),
            Outcome::http(200).sni("www.baidu.com").from_sidecar("0 -"),
        )
        .mesh("allow-any")
        .ready(vec![Ready::Has(
            "virtualOutbound",
            "\"PassthroughCluster\"",
        )]),
        Scenario::new(
            "2a REGISTRY_ONLY: HTTPS is reset",
            Request::head("https://www.baidu.com"),
            Outcome::curl_exit(35).sidecar_log("0 UH -> -"),
        )
        .files(vec![httpbin()])
        .ready(vec![
            registry_only(),
            Ready::Has("outbound|80||httpbin.org", ""),
        ]),
        Scenario::new(
            "2b REGISTRY_ONLY: HTTP to an unknown host",
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(502)
                .error_body("no ServiceEntry allows edition.cnn.com (REGISTRY_ONLY)")
                .sidecar_log("502 - -> -"),
        )
        .files(vec![httpbin()])
        .ready(vec![registry_only(), Ready::Has("80", "httpbin.org")]),
        Scenario::new(
            "3 ServiceEntry httpbin.org (HTTP)",
            Request::get("http://httpbin.org/headers"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("httpbin.org:80/*")
                .from_sidecar("200 -"),
        )
        .files(vec![httpbin()])
        .ready(vec![Ready::Has("80", "outbound|80||httpbin.org")]),
        Scenario::new(
            "4 ServiceEntry www.baidu.com (HTTPS)",
            Request::head("https://www.baidu.com"),
            Outcome::http(200).sni("www.baidu.com").from_sidecar("0 -"),
        )
        .files(vec![
            httpbin(),
            ("baidu.yaml", BAIDU_SERVICE_ENTRY.to_string()),
        ])
        .ready(vec![Ready::Has(
            "0.0.0.0_443",
            "outbound|443||www.baidu.com",
        )]),
        Scenario::new(
            "5 VirtualService timeout 1s",
            Request::get("http://httpbin.org/delay/2"),
            Outcome::http(504)
                .error_body("upstream request timeout")
                .decorator("httpbin.org:80/*")
                .from_sidecar("504 UT"),
        )
        .files(vec![
            httpbin(),
            ("httpbin-timeout.yaml", HTTPBIN_TIMEOUT.to_string()),
        ])
        .ready(vec![Ready::Has("80", "\"1s\"")]),
        Scenario::new(
            "6 TLS origination",
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:443/*")
                .sni("edition.cnn.com")
                .from_sidecar("200 -"),
        )
        .files(vec![("edition-cnn-com.yaml", tls_origination(ca_cert))])
        .ready(vec![Ready::Has(
            "80",
            "outbound|443|tls-origination|edition.cnn.com",
        )]),
        http_via_the_gateway("7 egress gateway: HTTP"),
        Scenario::new(
            "8 egress gateway: HTTPS passthrough",
            Request::get("https://edition.cnn.com/politics"),
            Outcome::http(200)
                .sni("edition.cnn.com")
                .through_gateway("0 -"),
        )
        .files(vec![
            gateway_service.clone(),
            ("cnn-gateway-tls.yaml", https_via_gateway(443)),
        ])
        .through_gateway("0.0.0.0_443", GATEWAY_TLS_CLUSTER, targets.https),
        Scenario::new(
            "9 egress gateway: ISTIO_MUTUAL, then TLS origination",
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:443/*")
                .sni("edition.cnn.com")
                .through_gateway("200 -"),
        )
        .files(vec![
            gateway_service.clone(),
            (
                "cnn-gateway-mtls.yaml",
                mutual_tls_via_gateway(443, &ca_cert.display().to_string()),
            ),
        ])
        .through_gateway("80", GATEWAY_TLS_CLUSTER, targets.https),
        Scenario::new(
            "10 egress gateway gone: HTTP",
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(503)
                .error_body("no healthy upstream")
                .sidecar_log("503 UH -> -"),
        )
        .files(cnn_via_gateway())
        .ready(vec![
            Ready::Has("80", GATEWAY_HTTP_CLUSTER),
            Ready::NoEndpoints(GATEWAY_HTTP_CLUSTER),
        ]),
        http_via_the_gateway("11 egress gateway back: HTTP"),
        Scenario::new(
            "12 accessLogEncoding JSON: Istio's fields, typed",
            Request::get("http://httpbin.org/headers"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("httpbin.org:80/*")
                .peer(SIDECAR)
                .sidecar_log(&format!(
                    "200 - -> external {{{}}}",
                    ISTIO_JSON_FIELDS.join(", ")
                )),
        )
        .mesh("json-access-log")
        .files(vec![httpbin()])
        .ready(vec![Ready::Has("0.0.0.0_80", "json_format")]),
    ])
}

#[test]
fn agent_and_envoy_agree_on_the_egress_tasks() -> Result<()> {
    if !netns::require_root("agent_and_envoy_agree_on_the_egress_tasks") {
        return Ok(());
    }
    let started = Instant::now();
    let ca = TestCa::new()?;
    let scenarios = scenarios(GatewayPorts::of_istio_service()?, ca.cert_path())?;
    let report = parity::run(&scenarios, &ca)?;
    println!("{report}");
    println!("runtime: {:.1?}", started.elapsed());
    // A panic, so that every process prints its logs.
    let failures = report.failures();
    assert!(failures.is_empty(), "{}\n\n{report}", failures.join("\n"));
    Ok(())
}
