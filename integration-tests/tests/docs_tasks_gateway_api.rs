//! The Gateway API tabs of istio.io's egress tasks, applied as published
//! (`fixtures/docs/<task>/gateway-api/`, byte for byte), side by side with
//! their classic tabs: each test's table holds, for a step of a task, the
//! row of the classic tab's files and the row of the Gateway API tab's,
//! with one expected [`Outcome`] for both: the same request with real curl,
//! through our agent and then through Envoy 1.40 on the same control plane
//! ([`integration_tests::parity`]), must come to the same status, headers,
//! SNI, client certificate, upstream peer and access log summaries whichever
//! tab configured it.
//!
//! What differs between the tabs by design is in the rows, not in the
//! outcome: the classic tab goes through Istio's install's
//! `istio-egressgateway` (namespace `istio-system`, label
//! `istio=egressgateway`, service account
//! `istio-egressgateway-service-account`), reached through the Service
//! `istio-egressgateway` and a DestinationRule subset of it; the Gateway API
//! tab through the proxy Istio deploys for the Gateway (`<name>-istio` in
//! `default`, labelled `gateway.networking.k8s.io/gateway-name: <name>`),
//! reached through the Service `<name>-istio` that Istio generates, with
//! the Gateway's own ports as its target ports; so the sidecar's cluster for
//! the gateway has another name. Either gateway runs in a pod of its own
//! (a network namespace), started by hand with the identity Istio gives
//! that deployment.
//!
//! The egress-tls-origination task has no Gateway API tab: istio.io runs its
//! classic snippets with the Gateway API installed, and its steps involve no
//! gateway (`docs_tasks.rs` applies them).
//!
//! Needs root (namespaces, iptables): see `netns::require_root`.

use anyhow::Result;
use integration_tests::docs_tasks::{Setup, run_task, tabs};
use integration_tests::parity::{Outcome, Request, Scenario};

const UPSTREAM_SERVICE_TIME: &str = "x-envoy-upstream-service-time";
const MY_NGINX: &str = "my-nginx.mesh-external.svc.cluster.local";

/// The sidecar's cluster for `<gateway>-istio.default`'s `port`, the
/// Service Istio generates for a Gateway API Gateway: no subset.
macro_rules! gateway_api_cluster {
    ($port:literal, $gateway:literal) => {
        concat!(
            "outbound|",
            $port,
            "||",
            $gateway,
            "-istio.default.svc.cluster.local"
        )
    };
}

/// egress-gateway, HTTP: the sidecar sends edition.cnn.com's HTTP to the
/// gateway, which sends it on to port 80.
fn egress_gateway_http(setup: &Setup) -> Result<Vec<Scenario>> {
    let request = || Request::get("http://edition.cnn.com/politics");
    let expected = Outcome::http(200)
        .x_envoy(&[UPSTREAM_SERVICE_TIME])
        .decorator("edition.cnn.com:80/*")
        .through_gateway("200 -");
    Ok(vec![
        Scenario::new(
            "egress-gateway HTTP, classic tab",
            request(),
            expected.clone(),
        )
        .files(tabs::egress_gateway_http(setup)?)
        .through_gateway(
            "80",
            "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local",
            setup.targets.http,
        ),
        Scenario::new("egress-gateway HTTP, Gateway API tab", request(), expected)
            .files(tabs::egress_gateway_http_api()?)
            .through_gateway_api(
                "cnn-egress-gateway",
                "80",
                gateway_api_cluster!(80, "cnn-egress-gateway"),
                80,
            ),
    ])
}

/// egress-gateway, HTTPS: the sidecar passes the TLS through to the gateway
/// by SNI, which passes it on to port 443.
fn egress_gateway_https(setup: &Setup) -> Result<Vec<Scenario>> {
    let request = || Request::get("https://edition.cnn.com/politics");
    let expected = Outcome::http(200)
        .sni("edition.cnn.com")
        .through_gateway("0 -");
    Ok(vec![
        Scenario::new(
            "egress-gateway HTTPS, classic tab",
            request(),
            expected.clone(),
        )
        .files(tabs::egress_gateway_https(setup)?)
        .through_gateway(
            "0.0.0.0_443",
            "outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local",
            setup.targets.https,
        ),
        Scenario::new("egress-gateway HTTPS, Gateway API tab", request(), expected)
            .files(tabs::egress_gateway_https_api()?)
            .through_gateway_api(
                "cnn-egress-gateway",
                "0.0.0.0_443",
                gateway_api_cluster!(443, "cnn-egress-gateway"),
                443,
            ),
    ])
}

/// egress-gateway-tls-origination: the sidecar sends HTTP over
/// ISTIO_MUTUAL to the gateway's port 80, which originates TLS to 443.
fn tls_origination_at_the_gateway(setup: &Setup) -> Result<Vec<Scenario>> {
    let request = || Request::get("http://edition.cnn.com/politics");
    let expected = Outcome::http(200)
        .x_envoy(&[UPSTREAM_SERVICE_TIME])
        .decorator("edition.cnn.com:443/*")
        .sni("edition.cnn.com")
        .through_gateway("200 -");
    Ok(vec![
        Scenario::new(
            "egress-gateway-tls-origination, classic tab",
            request(),
            expected.clone(),
        )
        .files(tabs::tls_origination_at_the_gateway(setup)?)
        .through_gateway(
            "80",
            "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local",
            setup.targets.http,
        ),
        Scenario::new(
            "egress-gateway-tls-origination, Gateway API tab",
            request(),
            expected,
        )
        .files(tabs::tls_origination_at_the_gateway_api()?)
        .through_gateway_api(
            "cnn-egress-gateway",
            "80",
            gateway_api_cluster!(80, "cnn-egress-gateway"),
            80,
        ),
    ])
}

/// egress-gateway-tls-origination, mutual: the sidecar sends HTTP for
/// my-nginx over ISTIO_MUTUAL to the gateway's port 443, which originates
/// mutual TLS with the `client-credential` Secret of its own namespace.
fn mutual_tls_origination_at_the_gateway(setup: &Setup) -> Result<Vec<Scenario>> {
    let request = || Request::get("http://my-nginx.mesh-external.svc.cluster.local/");
    let expected = Outcome::http(200)
        .x_envoy(&[UPSTREAM_SERVICE_TIME])
        .decorator("my-nginx.mesh-external.svc.cluster.local:443/*")
        .sni(MY_NGINX)
        .client_cert()
        .through_gateway("200 -");
    Ok(vec![
        Scenario::new(
            "egress-gateway-tls-origination mutual, classic tab",
            request(),
            expected.clone(),
        )
        .files(tabs::mutual_tls_origination_at_the_gateway(setup)?)
        .through_gateway(
            "80",
            "outbound|443|nginx|istio-egressgateway.istio-system.svc.cluster.local",
            setup.targets.https,
        ),
        Scenario::new(
            "egress-gateway-tls-origination mutual, Gateway API tab",
            request(),
            expected,
        )
        .files(tabs::mutual_tls_origination_at_the_gateway_api(setup)?)
        .through_gateway_api(
            "nginx-egressgateway",
            "80",
            gateway_api_cluster!(443, "nginx-egressgateway"),
            443,
        ),
    ])
}

/// wildcard-egress-hosts: `*.wikipedia.org` passed through the gateway by
/// SNI, which sends every name to www.wikipedia.org's address.
fn wildcard_egress_hosts(setup: &Setup) -> Result<Vec<Scenario>> {
    let mut rows = Vec::new();
    for (names, url, sni) in [
        (
            [
                "wildcard-egress-hosts en.wikipedia.org, classic tab",
                "wildcard-egress-hosts en.wikipedia.org, Gateway API tab",
            ],
            "https://en.wikipedia.org/wiki/Main_Page",
            "en.wikipedia.org",
        ),
        (
            [
                "wildcard-egress-hosts de.wikipedia.org, classic tab",
                "wildcard-egress-hosts de.wikipedia.org, Gateway API tab",
            ],
            "https://de.wikipedia.org/wiki/Wikipedia:Hauptseite",
            "de.wikipedia.org",
        ),
    ] {
        let expected = Outcome::http(200).sni(sni).through_gateway("0 -");
        rows.push(
            Scenario::new(names[0], Request::get(url), expected.clone())
                .files(tabs::wildcard_through_the_gateway(setup)?)
                .through_gateway(
                    "0.0.0.0_443",
                    "outbound|443|wikipedia|istio-egressgateway.istio-system.svc.cluster.local",
                    setup.targets.https,
                ),
        );
        rows.push(
            Scenario::new(names[1], Request::get(url), expected)
                .files(tabs::wildcard_through_the_gateway_api()?)
                .through_gateway_api(
                    "wikipedia-egress-gateway",
                    "0.0.0.0_443",
                    gateway_api_cluster!(443, "wikipedia-egress-gateway"),
                    443,
                ),
        );
    }
    Ok(rows)
}

#[test]
fn egress_gateway_http_gateway_api_tab_as_the_classic_tab() -> Result<()> {
    run_task(
        "egress_gateway_http_gateway_api_tab_as_the_classic_tab",
        egress_gateway_http,
    )
}

#[test]
fn egress_gateway_https_gateway_api_tab_as_the_classic_tab() -> Result<()> {
    run_task(
        "egress_gateway_https_gateway_api_tab_as_the_classic_tab",
        egress_gateway_https,
    )
}

#[test]
fn egress_gateway_tls_origination_gateway_api_tab_as_the_classic_tab() -> Result<()> {
    run_task(
        "egress_gateway_tls_origination_gateway_api_tab_as_the_classic_tab",
        tls_origination_at_the_gateway,
    )
}

#[test]
fn egress_gateway_mutual_tls_origination_gateway_api_tab_as_the_classic_tab() -> Result<()> {
    run_task(
        "egress_gateway_mutual_tls_origination_gateway_api_tab_as_the_classic_tab",
        mutual_tls_origination_at_the_gateway,
    )
}

#[test]
fn wildcard_egress_hosts_gateway_api_tab_as_the_classic_tab() -> Result<()> {
    run_task(
        "wildcard_egress_hosts_gateway_api_tab_as_the_classic_tab",
        wildcard_egress_hosts,
    )
}
