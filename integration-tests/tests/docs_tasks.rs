//! istio.io's egress tasks, applied as published: each row of the table
//! serves the snippets of one step of a task (`fixtures/docs/`, byte for
//! byte; see its README) and sends the request the task shows, with real
//! curl, through our agent and then through Envoy 1.40 on the same control
//! plane ([`integration_tests::parity`]). Both must give what the task
//! shows: the status, the proxy's error body, the `x-envoy-*` headers, the
//! SNI and client certificate the external server saw, who reached it, and
//! the access logs.
//!
//! The external services are the harness's: HTTP on port 80 and HTTPS on
//! 443 for every name the tasks use, with a certificate of a test CA that
//! the proxies trust as their system roots; for `my-nginx` (the mutual TLS
//! tasks' nginx) the HTTPS server also asks for a client certificate of that
//! CA. Where a task creates a Secret with kubectl, the row serves the
//! Secret YAML that command makes, with files the test CA made.
//!
//! The tasks' responses differ from the real sites' only in the body
//! (edition.cnn.com answers `/politics` on port 80 with a redirect; the test
//! server answers 200 on both ports).
//!
//! Needs root (namespaces, iptables): see `netns::require_root`.

use anyhow::Result;
use integration_tests::docs::ClientCredential;
use integration_tests::docs_tasks::{File, Setup, doc, run_task, secret_doc, tabs};
use integration_tests::parity::{Outcome, Ready, Request, Scenario};

const UPSTREAM_SERVICE_TIME: &str = "x-envoy-upstream-service-time";
const MY_NGINX: &str = "my-nginx.mesh-external.svc.cluster.local";
/// The gateway's cluster for nginx, as the sidecar reaches it.
const GATEWAY_NGINX_CLUSTER: &str =
    "outbound|443|nginx|istio-egressgateway.istio-system.svc.cluster.local";
/// The transport socket of a cluster that originates TLS.
const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// Rows of the egress-control task ("Accessing External Services").
fn egress_control() -> Result<Vec<Scenario>> {
    let httpbin = doc("egress-control/access_an_external_http_service_1.yaml")?;
    let google = doc("egress-control/access_an_external_https_service_1.yaml")?;
    let timeout = doc("egress-control/manage_traffic_to_external_services_2.yaml")?;
    Ok(vec![
        Scenario::new(
            "egress-control: ALLOW_ANY passes HTTPS to www.google.com",
            Request::head("https://www.google.com"),
            Outcome::http(200).sni("www.google.com").from_sidecar("0 -"),
        )
        .mesh("allow-any")
        .ready(vec![Ready::Has(
            "virtualOutbound",
            "\"PassthroughCluster\"",
        )]),
        Scenario::new(
            "egress-control: REGISTRY_ONLY resets HTTPS to www.google.com",
            Request::head("https://www.google.com"),
            Outcome::curl_exit(35).sidecar_log("0 UH -> -"),
        )
        .files(vec![httpbin.clone()])
        .ready(vec![
            Ready::Lacks("virtualOutbound", "\"PassthroughCluster\""),
            Ready::Has("outbound|80||httpbin.org", ""),
        ]),
        Scenario::new(
            "egress-control: ServiceEntry httpbin-ext",
            Request::get("http://httpbin.org/headers"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("httpbin.org:80/*")
                .from_sidecar("200 -"),
        )
        .files(vec![httpbin.clone()])
        .ready(vec![Ready::Has("80", "outbound|80||httpbin.org")]),
        Scenario::new(
            "egress-control: ServiceEntry google",
            Request::head("https://www.google.com"),
            Outcome::http(200).sni("www.google.com").from_sidecar("0 -"),
        )
        .files(vec![httpbin.clone(), google.clone()])
        .ready(vec![Ready::Has("outbound|443||www.google.com", "")]),
        Scenario::new(
            "egress-control: VirtualService timeout 3s",
            Request::get("http://httpbin.org/delay/5"),
            Outcome::http(504)
                .error_body("upstream request timeout")
                .decorator("httpbin.org:80/*")
                .from_sidecar("504 UT"),
        )
        .files(vec![httpbin, google, timeout])
        .ready(vec![Ready::Has("80", "\"3s\"")]),
    ])
}

/// Rows of the egress-tls-origination task.
fn egress_tls_origination() -> Result<Vec<Scenario>> {
    let simple = doc("egress-tls-origination/apply_simple.yaml")?;
    let origination = doc("egress-tls-origination/apply_origination.yaml")?;
    Ok(vec![
        Scenario::new(
            "egress-tls-origination: ServiceEntry, HTTP",
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:80/*")
                .from_sidecar("200 -"),
        )
        .files(vec![simple])
        .ready(vec![Ready::Has("80", "outbound|80||edition.cnn.com")]),
        Scenario::new(
            "egress-tls-origination: TLS origination of HTTP",
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:80/*")
                .sni("edition.cnn.com")
                .from_sidecar("200 -"),
        )
        .files(vec![origination.clone()])
        .ready(vec![Ready::Has(
            "outbound|80||edition.cnn.com",
            TLS_TRANSPORT_SOCKET,
        )]),
        Scenario::new(
            "egress-tls-origination: HTTPS still passes",
            Request::get("https://edition.cnn.com/politics"),
            Outcome::http(200)
                .sni("edition.cnn.com")
                .from_sidecar("0 -"),
        )
        .files(vec![origination])
        .ready(vec![Ready::Has("outbound|443||edition.cnn.com", "")]),
    ])
}

/// The egress-tls-origination task's "Mutual TLS origination" section: the
/// sidecar originates mutual TLS with the `client-credential` Secret of its
/// own namespace, through a DestinationRule selecting it.
fn mutual_tls_origination_at_the_sidecar(credential: &ClientCredential) -> Result<Scenario> {
    Ok(Scenario::new(
        "egress-tls-origination: mutual TLS origination at the sidecar",
        Request::get("http://my-nginx.mesh-external.svc.cluster.local/"),
        Outcome::http(200)
            .x_envoy(&[UPSTREAM_SERVICE_TIME])
            .decorator("my-nginx.mesh-external.svc.cluster.local:80/*")
            .sni(MY_NGINX)
            .client_cert()
            .from_sidecar("200 -"),
    )
    .files(vec![
        secret_doc(
            "egress-tls-origination/client_credential_secret.yaml",
            credential,
        )?,
        doc("egress-tls-origination/mutual_tls_origination_at_sidecar.yaml")?,
    ])
    .ready(vec![Ready::Has(
        "outbound|80||my-nginx.mesh-external.svc.cluster.local",
        "kubernetes://client-credential",
    )]))
}

/// Rows of the egress-gateway task: HTTP, then HTTPS passed through.
fn egress_gateway(setup: &Setup) -> Result<Vec<Scenario>> {
    let targets = setup.targets;
    Ok(vec![
        Scenario::new(
            "egress-gateway: HTTP through the gateway",
            Request::get("http://edition.cnn.com/politics"),
            Outcome::http(200)
                .x_envoy(&[UPSTREAM_SERVICE_TIME])
                .decorator("edition.cnn.com:80/*")
                .through_gateway("200 -"),
        )
        .files(tabs::egress_gateway_http(setup)?)
        .through_gateway(
            "80",
            "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local",
            targets.http,
        ),
        Scenario::new(
            "egress-gateway: HTTPS through the gateway (PASSTHROUGH)",
            Request::get("https://edition.cnn.com/politics"),
            Outcome::http(200)
                .sni("edition.cnn.com")
                .through_gateway("0 -"),
        )
        .files(tabs::egress_gateway_https(setup)?)
        .through_gateway(
            "0.0.0.0_443",
            "outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local",
            targets.https,
        ),
    ])
}

/// The egress-gateway-tls-origination task's first part: the sidecar
/// sends HTTP over ISTIO_MUTUAL to the gateway, which originates TLS.
fn tls_origination_at_the_gateway(setup: &Setup) -> Result<Scenario> {
    Ok(Scenario::new(
        "egress-gateway-tls-origination: TLS origination at the gateway",
        Request::get("http://edition.cnn.com/politics"),
        Outcome::http(200)
            .x_envoy(&[UPSTREAM_SERVICE_TIME])
            .decorator("edition.cnn.com:443/*")
            .sni("edition.cnn.com")
            .through_gateway("200 -"),
    )
    .files(tabs::tls_origination_at_the_gateway(setup)?)
    .through_gateway(
        "80",
        "outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local",
        setup.targets.http,
    ))
}

/// The app's HTTP to my-nginx goes over ISTIO_MUTUAL to the gateway, which
/// originates TLS ([`tabs::nginx_through_the_gateway`]).
fn nginx_through_the_gateway(
    name: &'static str,
    setup: &Setup,
    files: Vec<File>,
    expected: Outcome,
) -> Scenario {
    Scenario::new(
        name,
        Request::get("http://my-nginx.mesh-external.svc.cluster.local/"),
        expected
            .x_envoy(&[UPSTREAM_SERVICE_TIME])
            .decorator("my-nginx.mesh-external.svc.cluster.local:443/*")
            .sni(MY_NGINX)
            .through_gateway("200 -"),
    )
    .files(files)
    .through_gateway("80", GATEWAY_NGINX_CLUSTER, setup.targets.https)
}

/// Rows of the wildcard-egress-hosts task: `*.wikipedia.org` directly,
/// then through the gateway to www.wikipedia.org's address.
fn wildcard_egress_hosts(setup: &Setup) -> Result<Vec<Scenario>> {
    let direct = tabs::wildcard_directly()?;
    let via_gateway = tabs::wildcard_through_the_gateway(setup)?;
    let wikipedia_cluster =
        "outbound|443|wikipedia|istio-egressgateway.istio-system.svc.cluster.local";
    let mut rows = Vec::new();
    for (name, url, sni) in [
        (
            "wildcard-egress-hosts: en.wikipedia.org directly",
            "https://en.wikipedia.org/wiki/Main_Page",
            "en.wikipedia.org",
        ),
        (
            "wildcard-egress-hosts: de.wikipedia.org directly",
            "https://de.wikipedia.org/wiki/Wikipedia:Hauptseite",
            "de.wikipedia.org",
        ),
    ] {
        rows.push(
            Scenario::new(
                name,
                Request::get(url),
                Outcome::http(200).sni(sni).from_sidecar("0 -"),
            )
            .files(direct.clone())
            .ready(vec![Ready::Has("outbound|443||*.wikipedia.org", "")]),
        );
    }
    for (name, url, sni) in [
        (
            "wildcard-egress-hosts: en.wikipedia.org through the gateway",
            "https://en.wikipedia.org/wiki/Main_Page",
            "en.wikipedia.org",
        ),
        (
            "wildcard-egress-hosts: de.wikipedia.org through the gateway",
            "https://de.wikipedia.org/wiki/Wikipedia:Hauptseite",
            "de.wikipedia.org",
        ),
    ] {
        rows.push(
            Scenario::new(
                name,
                Request::get(url),
                Outcome::http(200).sni(sni).through_gateway("0 -"),
            )
            .files(via_gateway.clone())
            .through_gateway("0.0.0.0_443", wikipedia_cluster, setup.targets.https),
        );
    }
    Ok(rows)
}

#[test]
fn egress_control_applies_as_published() -> Result<()> {
    run_task("egress_control_applies_as_published", |_| egress_control())
}

#[test]
fn egress_tls_origination_applies_as_published() -> Result<()> {
    run_task("egress_tls_origination_applies_as_published", |_| {
        egress_tls_origination()
    })
}

#[test]
fn egress_gateway_applies_as_published() -> Result<()> {
    run_task("egress_gateway_applies_as_published", |setup| {
        egress_gateway(setup)
    })
}

#[test]
fn egress_gateway_tls_origination_applies_as_published() -> Result<()> {
    run_task(
        "egress_gateway_tls_origination_applies_as_published",
        |setup| Ok(vec![tls_origination_at_the_gateway(setup)?]),
    )
}

#[test]
fn wildcard_egress_hosts_applies_as_published() -> Result<()> {
    run_task("wildcard_egress_hosts_applies_as_published", |setup| {
        wildcard_egress_hosts(setup)
    })
}

#[test]
fn egress_tls_origination_mutual_applies_as_published() -> Result<()> {
    run_task(
        "egress_tls_origination_mutual_applies_as_published",
        |setup| {
            Ok(vec![mutual_tls_origination_at_the_sidecar(
                &setup.credential,
            )?])
        },
    )
}

#[test]
fn egress_gateway_tls_origination_mutual_applies_as_published() -> Result<()> {
    run_task(
        "egress_gateway_tls_origination_mutual_applies_as_published",
        |setup| {
            Ok(vec![nginx_through_the_gateway(
                "egress-gateway-tls-origination: mutual TLS origination (credentialName)",
                setup,
                tabs::mutual_tls_origination_at_the_gateway(setup)?,
                Outcome::http(200).client_cert(),
            )])
        },
    )
}

#[test]
fn egress_gateway_tls_origination_sds_applies_as_published() -> Result<()> {
    run_task(
        "egress_gateway_tls_origination_sds_applies_as_published",
        |setup| {
            Ok(vec![
                nginx_through_the_gateway(
                    "egress-gateway-tls-origination-sds: simple TLS origination (credentialName -cacert)",
                    setup,
                    tabs::nginx_through_the_gateway(
                        setup,
                        [
                            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_1.yaml",
                            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_2.yaml",
                            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_3.yaml",
                            "egress-gateway-tls-origination-sds/configure_simple_tls_origination_for_egress_traffic_4.yaml",
                        ],
                    )?,
                    Outcome::http(200),
                ),
                nginx_through_the_gateway(
                    "egress-gateway-tls-origination-sds: mutual TLS origination (credentialName)",
                    setup,
                    tabs::nginx_through_the_gateway(
                        setup,
                        [
                            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_1.yaml",
                            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_2.yaml",
                            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_3.yaml",
                            "egress-gateway-tls-origination-sds/configure_mutual_tls_origination_for_egress_traffic_using_sds_4.yaml",
                        ],
                    )?,
                    Outcome::http(200).client_cert(),
                ),
            ])
        },
    )
}
