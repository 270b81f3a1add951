//! The xDS port as an operator sees it with real grpcurl, over TLS with an
//! operator's token (`-cacert root-cert.pem -H "authorization: Bearer .."`):
//! the services it advertises through reflection, their schemas, an ADS
//! call with decoded resources, and gRPC health; and the plaintext port,
//! which serves config but never certificates.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::control_plane::{ConfigDir, ControlPlane};
use integration_tests::fixtures::HTTPBIN_SERVICE_ENTRY;
use integration_tests::grpcurl::{Grpcurl, messages};
use serde_json::json;
use shared::type_url::CLUSTER as CLUSTER_TYPE;

const ADS: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const CSDS: &str = "envoy.service.status.v3.ClientStatusDiscoveryService";
const HEALTH: &str = "grpc.health.v1.Health";
const CA: &str = "istio.v1.auth.IstioCertificateService";
/// Envoy's access log service, where proxies report for the egress
/// inventory.
const ALS: &str = "envoy.service.accesslog.v3.AccessLogService";

/// A control plane serving Istio's httpbin.org ServiceEntry; the config
/// directory lives as long as the server.
fn serve_httpbin() -> Result<(ConfigDir, ControlPlane)> {
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane = ControlPlane::start(config.path(), None)?;
    Ok((config, control_plane))
}

#[test]
fn reflection_advertises_the_served_services_only() -> Result<()> {
    let (_config, control_plane) = serve_httpbin()?;
    let grpcurl = control_plane.grpcurl()?;

    let listed = grpcurl.list()?;
    listed.ensure_success()?;
    let services: BTreeSet<&str> = listed.stdout.lines().map(str::trim).collect();
    assert!(
        services.contains("grpc.reflection.v1.ServerReflection")
            || services.contains("grpc.reflection.v1alpha.ServerReflection"),
        "no reflection service listed: {services:?}"
    );
    for served in [ADS, CSDS, HEALTH, CA, ALS] {
        assert!(
            services.contains(served),
            "{served} not listed: {services:?}"
        );
    }
    // Services of the Envoy API a control plane never serves: listing them
    // would send an operator to methods that answer UNIMPLEMENTED.
    for unserved in [
        "envoy.service.auth.v3.Authorization",
        "envoy.service.ratelimit.v3.RateLimitService",
    ] {
        assert!(
            !services.contains(unserved),
            "{unserved} is listed but not served: {services:?}"
        );
    }

    let described = grpcurl.describe(ADS)?;
    described.ensure_success()?;
    assert!(
        described.stdout.contains(&format!("{ADS} is a service"))
            && described.stdout.contains(
                "rpc StreamAggregatedResources ( stream .envoy.service.discovery.v3.DiscoveryRequest ) \
                 returns ( stream .envoy.service.discovery.v3.DiscoveryResponse )"
            )
            && described.stdout.contains("rpc DeltaAggregatedResources"),
        "{}",
        described.stdout
    );
    Ok(())
}

/// The clusters a `StreamAggregatedResources` call by `grpcurl` as the
/// `sleep` sidecar got.
fn sleep_clusters(grpcurl: &Grpcurl) -> Result<()> {
    let request = json!({
        "node": {
            "id": "sidecar~10.0.0.1~sleep.default~default.svc.cluster.local",
            "metadata": { "NAMESPACE": "default", "SERVICE_ACCOUNT": "sleep" },
        },
        "type_url": CLUSTER_TYPE,
    });
    // The stream may stay open until -max-time; whatever arrived is on stdout.
    let output = grpcurl.call(
        &format!("{ADS}/StreamAggregatedResources"),
        &request,
        Duration::from_secs(3),
    )?;
    let responses = messages(&output.stdout)
        .with_context(|| format!("grpcurl exited {}: {}", output.status, output.stderr))?;
    let response = responses.first().with_context(|| {
        format!(
            "no DiscoveryResponse (grpcurl exited {}): {}",
            output.status, output.stderr
        )
    })?;
    assert_eq!(response["typeUrl"], CLUSTER_TYPE, "{response:#}");
    assert!(
        !response["versionInfo"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{response:#}"
    );
    let resources = response["resources"]
        .as_array()
        .with_context(|| format!("no resources: {response:#}"))?;
    assert!(
        resources
            .iter()
            .all(|cluster| cluster["@type"] == CLUSTER_TYPE),
        "every resource is decoded as a Cluster: {response:#}"
    );
    let httpbin = resources
        .iter()
        .find(|cluster| cluster["name"] == "outbound|80||httpbin.org")
        .with_context(|| format!("no cluster outbound|80||httpbin.org: {response:#}"))?;
    assert_eq!(httpbin["type"], "STRICT_DNS", "{httpbin:#}");
    Ok(())
}

#[test]
fn stream_aggregated_resources_returns_decoded_clusters() -> Result<()> {
    let (_config, control_plane) = serve_httpbin()?;
    let token = control_plane.ca().token("default", "sleep")?;
    sleep_clusters(&control_plane.grpcurl_calling_with(Some(&token))?)
}

#[test]
fn the_plaintext_port_serves_config_but_never_certificates() -> Result<()> {
    let config = ConfigDir::new()?;
    config.write("httpbin.yaml", HTTPBIN_SERVICE_ENTRY)?;
    let control_plane = ControlPlane::options(config.path()).plaintext().start()?;
    let grpcurl = Grpcurl::plaintext(
        control_plane
            .plaintext_addr()
            .context("started with a plaintext port")?,
    );
    sleep_clusters(&grpcurl)?;

    let listed = grpcurl.list()?;
    listed.ensure_success()?;
    assert!(
        !listed.stdout.contains(CA),
        "the plaintext port lists the CA: {}",
        listed.stdout
    );
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = vec![rcgen::SanType::URI(rcgen::string::Ia5String::try_from(
        "spiffe://cluster.local/ns/default/sa/sleep",
    )?)];
    let csr = params.serialize_request(&key)?.pem()?;
    let issued = grpcurl.call(
        &format!("{CA}/CreateCertificate"),
        &json!({ "csr": csr }),
        Duration::from_secs(10),
    )?;
    assert!(
        !issued.success() && !issued.stdout.contains("BEGIN CERTIFICATE"),
        "the plaintext port issued a certificate: {}",
        issued.stdout
    );
    Ok(())
}

#[test]
fn health_check_says_serving() -> Result<()> {
    let (_config, control_plane) = serve_httpbin()?;
    let grpcurl = control_plane.grpcurl()?;
    for service in ["", ADS, CSDS] {
        let output = grpcurl.call(
            &format!("{HEALTH}/Check"),
            &json!({ "service": service }),
            Duration::from_secs(10),
        )?;
        output.ensure_success()?;
        assert_eq!(
            output.json()?,
            json!({ "status": "SERVING" }),
            "health of {service:?}"
        );
    }
    Ok(())
}
