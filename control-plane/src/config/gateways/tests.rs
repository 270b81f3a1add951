//! Istio's forms of a VirtualService's `gateways` entries.

use super::*;

#[test]
fn namespace_slash_name_names_that_namespace() {
    assert_eq!(
        gateway_named("istio-system/egress", "default"),
        ("istio-system", "egress")
    );
}

#[test]
fn dot_slash_name_is_the_virtual_service_namespace() {
    assert_eq!(gateway_named("./egress", "default"), ("default", "egress"));
}

#[test]
fn a_bare_name_is_in_the_virtual_service_namespace() {
    assert_eq!(gateway_named("egress", "default"), ("default", "egress"));
}

#[test]
fn the_older_dotted_form_is_name_then_namespace() {
    assert_eq!(
        gateway_named("egress.istio-system.svc.cluster.local", "default"),
        ("istio-system", "egress")
    );
    assert_eq!(
        gateway_named("egress.istio-system", "default"),
        ("istio-system", "egress")
    );
}
