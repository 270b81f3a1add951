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

/// A Sidecar with `annotations` (a YAML flow mapping) and `spec`.
fn annotated_sidecar(annotations: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n  namespace: istio-system\n  annotations: {annotations}\nspec:\n{spec}"
    )
}

const REGISTRY_ONLY: &str = "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n";

#[test]
fn dry_run_is_a_registry_only_sidecars_annotation() {
    valid(&annotated_sidecar(
        "{istio.io/dry-run: \"true\"}",
        REGISTRY_ONLY,
    ));
    valid(&annotated_sidecar(
        "{istio.io/dry-run: \"false\"}",
        REGISTRY_ONLY,
    ));
    for spec in [
        "  outboundTrafficPolicy: {mode: ALLOW_ANY}\n",
        "  egress:\n  - hosts: ['./*']\n",
    ] {
        one_error(
            &annotated_sidecar("{istio.io/dry-run: \"true\"}", spec),
            &[
                "Sidecar istio-system/default",
                "metadata.annotations.istio.io/dry-run: istio.io/dry-run applies only to a Sidecar whose outboundTrafficPolicy.mode is REGISTRY_ONLY",
            ],
        );
    }
}

#[test]
fn dry_run_is_true_or_false() {
    one_error(
        &annotated_sidecar("{istio.io/dry-run: \"yes\"}", REGISTRY_ONLY),
        &[
            "metadata.annotations.istio.io/dry-run: istio.io/dry-run must be \"true\" or \"false\", not \"yes\"",
        ],
    );
}
