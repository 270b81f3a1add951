//! Sidecar validation: egress hosts and listeners.

use super::*;

#[test]
fn sidecar_egress_hosts_need_a_namespace() {
    let sidecar = |egress: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\nspec:\n  egress:\n{egress}"
        )
    };
    valid(&sidecar("  - hosts: ['./*', 'istio-system/*']\n"));
    one_error(
        &sidecar("  - hosts: [edition.cnn.com]\n"),
        &["spec.egress[0].hosts[0]: egress host \"edition.cnn.com\" must be namespace/dnsName"],
    );
    one_error(
        &sidecar("  - hosts: []\n"),
        &["spec.egress[0].hosts: egress listener has no hosts"],
    );
}

#[test]
fn an_egress_listener_port_is_not_supported() {
    let text = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\nspec:\n  egress:\n  - port: {number: 80, protocol: HTTP}\n    hosts: ['./*']\n";
    assert!(
        load_error(text).contains("spec.egress[0].port: not supported by this control plane"),
        "{}",
        load_error(text)
    );
}
