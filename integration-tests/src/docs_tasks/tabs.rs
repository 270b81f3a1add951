//! The config files of the egress tasks' steps that send traffic through an
//! egress gateway, for each of the task's two tabs: the classic one (Istio
//! Gateway, DestinationRule and VirtualService, through the egress gateway
//! Istio's install creates, whose Service the row serves) and the Gateway
//! API one (Gateway, HTTPRoute or TLSRoute, through the proxy Istio deploys
//! for the Gateway, whose Service `<name>-istio` Istio generates). Snippets
//! both tabs share (the ServiceEntries) are the classic tab's files.

use anyhow::Result;

use super::{File, Setup, doc, doc_in, secret_doc};

/// egress-gateway, "Egress gateway for HTTP traffic", classic tab.
pub fn egress_gateway_http(setup: &Setup) -> Result<Vec<File>> {
    Ok(vec![
        setup.gateway_service.clone(),
        doc("egress-gateway/egress_gateway_for_http_traffic_1.yaml")?,
        doc("egress-gateway/egress_gateway_for_http_traffic_3.yaml")?,
        doc("egress-gateway/egress_gateway_for_http_traffic_5.yaml")?,
    ])
}

/// ...its Gateway API tab.
pub fn egress_gateway_http_api() -> Result<Vec<File>> {
    Ok(vec![
        doc("egress-gateway/egress_gateway_for_http_traffic_1.yaml")?,
        doc("egress-gateway/gateway-api/egress_gateway_for_http_traffic_4.yaml")?,
        doc("egress-gateway/gateway-api/egress_gateway_for_http_traffic_6.yaml")?,
    ])
}

/// egress-gateway, "Egress gateway for HTTPS traffic", classic tab.
pub fn egress_gateway_https(setup: &Setup) -> Result<Vec<File>> {
    Ok(vec![
        setup.gateway_service.clone(),
        doc("egress-gateway/egress_gateway_for_https_traffic_1.yaml")?,
        doc("egress-gateway/egress_gateway_for_https_traffic_3.yaml")?,
    ])
}

/// ...its Gateway API tab.
pub fn egress_gateway_https_api() -> Result<Vec<File>> {
    Ok(vec![
        doc("egress-gateway/egress_gateway_for_https_traffic_1.yaml")?,
        doc("egress-gateway/gateway-api/egress_gateway_for_https_traffic_4.yaml")?,
    ])
}

/// egress-gateway-tls-origination, "Perform TLS origination with an egress
/// gateway", classic tab.
pub fn tls_origination_at_the_gateway(setup: &Setup) -> Result<Vec<File>> {
    Ok(vec![
        setup.gateway_service.clone(),
        doc(
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_1.yaml",
        )?,
        doc(
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_3.yaml",
        )?,
        doc(
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_4.yaml",
        )?,
    ])
}

/// ...its Gateway API tab.
pub fn tls_origination_at_the_gateway_api() -> Result<Vec<File>> {
    Ok(vec![
        doc(
            "egress-gateway-tls-origination/perform_tls_origination_with_an_egress_gateway_1.yaml",
        )?,
        doc(
            "egress-gateway-tls-origination/gateway-api/perform_tls_origination_with_an_egress_gateway_4.yaml",
        )?,
        doc(
            "egress-gateway-tls-origination/gateway-api/perform_tls_origination_with_an_egress_gateway_6.yaml",
        )?,
        doc(
            "egress-gateway-tls-origination/gateway-api/perform_tls_origination_with_an_egress_gateway_7.yaml",
        )?,
    ])
}

/// The app's HTTP to my-nginx over ISTIO_MUTUAL to the gateway, which
/// originates TLS with the `credentialName` of a DestinationRule applied
/// with `kubectl apply -n istio-system`: the task's Secret, Gateway and
/// DestinationRule, VirtualService, and that DestinationRule (`files`), with
/// my-nginx's Service and the gateway's.
pub fn nginx_through_the_gateway(setup: &Setup, files: [&'static str; 4]) -> Result<Vec<File>> {
    Ok(vec![
        setup.gateway_service.clone(),
        doc("harness/my-nginx-service.yaml")?,
        secret_doc(files[0], &setup.credential)?,
        doc(files[1])?,
        doc(files[2])?,
        doc_in(files[3], "istio-system")?,
    ])
}

/// egress-gateway-tls-origination, "Configure mutual TLS origination for
/// egress traffic", classic tab.
pub fn mutual_tls_origination_at_the_gateway(setup: &Setup) -> Result<Vec<File>> {
    nginx_through_the_gateway(
        setup,
        [
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_1.yaml",
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_2.yaml",
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_3.yaml",
            "egress-gateway-tls-origination/configure_mutual_tls_origination_for_egress_traffic_4.yaml",
        ],
    )
}

/// ...its Gateway API tab: the Secret in `default`, beside the Gateway's
/// proxy; the Gateway, the RBAC that lets that proxy read the Secret (not
/// handled: no API server), and the DestinationRule to the proxy; the
/// VirtualService to it, the HTTPRoute from it and the ReferenceGrant to
/// my-nginx; and the DestinationRule originating mutual TLS. The
/// VirtualService sends the app's port 80 to the gateway, served on the
/// sidecar's port-80 listener: in the classic tab the egress gateway's
/// Service has port 80, here none of the tab's Services has, and in a
/// cluster the app's own (the sleep sample's) gives it.
pub fn mutual_tls_origination_at_the_gateway_api(setup: &Setup) -> Result<Vec<File>> {
    Ok(vec![
        doc("harness/sleep-service.yaml")?,
        doc("harness/my-nginx-service.yaml")?,
        secret_doc(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_2.yaml",
            &setup.credential,
        )?,
        doc(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_4.yaml",
        )?,
        doc(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_6.yaml",
        )?,
        doc(
            "egress-gateway-tls-origination/gateway-api/configure_mutual_tls_origination_for_egress_traffic_8.yaml",
        )?,
    ])
}

/// wildcard-egress-hosts, "Configure direct traffic to a wildcard host".
pub fn wildcard_directly() -> Result<Vec<File>> {
    Ok(vec![doc(
        "wildcard-egress-hosts/configure_direct_traffic_to_a_wildcard_host_1.yaml",
    )?])
}

/// wildcard-egress-hosts, "Configure egress gateway traffic to a wildcard
/// host", classic tab (the direct step's ServiceEntry deleted before).
pub fn wildcard_through_the_gateway(setup: &Setup) -> Result<Vec<File>> {
    Ok(vec![
        setup.gateway_service.clone(),
        doc("wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_1.yaml")?,
        doc("wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_3.yaml")?,
    ])
}

/// ...its Gateway API tab (whose snippet holds the ServiceEntry as well).
pub fn wildcard_through_the_gateway_api() -> Result<Vec<File>> {
    Ok(vec![
        doc(
            "wildcard-egress-hosts/gateway-api/configure_egress_gateway_traffic_to_a_wildcard_host_2.yaml",
        )?,
        doc("wildcard-egress-hosts/configure_egress_gateway_traffic_to_a_wildcard_host_3.yaml")?,
    ])
}
