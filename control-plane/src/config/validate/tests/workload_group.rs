//! WorkloadGroup validation: a template without an address, locality or
//! network, no probe.

use super::*;
use crate::config::model::Labels;

fn workload_group(version: &str, spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/{version}\nkind: WorkloadGroup\nmetadata:\n  name: vms\n  namespace: shop\nspec:\n{spec}"
    )
}

const GROUP: &str = "  metadata:\n    labels: {app: reviews}\n  template:\n    serviceAccount: reviews\n    ports: {http: 8080}\n    weight: 2\n";

#[test]
fn a_workload_group_loads_in_every_istio_version() {
    for version in ["v1", "v1beta1", "v1alpha3"] {
        let text = workload_group(version, GROUP);
        valid(&text);
        let snapshot = load_str(Path::new("cfg.yaml"), &text).expect("loads");
        let group = &snapshot.workload_groups[0];
        assert_eq!(
            (group.meta.namespace.as_str(), group.meta.name.as_str()),
            ("shop", "vms")
        );
        assert_eq!(group.spec.service_account(), "reviews");
        assert_eq!(group.spec.metadata.labels["app"], "reviews");
    }
}

#[test]
fn template_is_required_as_istio_requires_it() {
    one_error(
        &workload_group("v1", "  metadata:\n    labels: {app: reviews}\n"),
        &["WorkloadGroup shop/vms: spec.template: template is missing; set template"],
    );
}

#[test]
fn a_template_address_is_refused_since_each_member_brings_its_own() {
    let text = workload_group(
        "v1",
        "  template:\n    address: 10.0.0.7\n    serviceAccount: reviews\n",
    );
    one_error(
        &text,
        &[
            "WorkloadGroup shop/vms: spec.template.address: address \"10.0.0.7\" is set in the template; remove it",
        ],
    );
}

#[test]
fn a_template_locality_or_network_is_not_supported() {
    for field in ["locality: us-east1/zone-a", "network: vm-net"] {
        let name = field.split(':').next().unwrap_or_default();
        let line = load_error(&workload_group("v1", &format!("{GROUP}    {field}\n")));
        assert!(
            line.contains(&format!(
                "WorkloadGroup shop/vms: spec.template.{name}: not supported by this control plane"
            )),
            "{line}"
        );
    }
}

#[test]
fn group_annotations_are_not_supported_since_no_member_carries_them() {
    let text = workload_group(
        "v1",
        "  metadata:\n    annotations: {team: shop}\n  template:\n    serviceAccount: reviews\n",
    );
    let line = load_error(&text);
    assert!(
        line.contains(
            "WorkloadGroup shop/vms: spec.metadata.annotations: not supported by this control plane"
        ),
        "{line}"
    );
}

#[test]
fn template_ports_are_checked() {
    one_error(
        &workload_group("v1", "  template:\n    ports: {http: 70000}\n"),
        &["spec.template.ports.http: port 70000 is out of range"],
    );
}

#[test]
fn a_probe_is_not_supported_because_no_probe_is_run() {
    let text = workload_group(
        "v1",
        &format!(
            "{GROUP}  probe:\n    periodSeconds: 5\n    httpGet: {{path: /ready, port: 8080}}\n"
        ),
    );
    assert!(
        load_error(&text).contains(
            "WorkloadGroup shop/vms: spec.probe: not supported by this control plane; remove `probe`"
        ),
        "{}",
        load_error(&text)
    );
}

#[test]
fn a_misspelt_template_field_is_a_schema_error() {
    let errors = load_str(
        Path::new("cfg.yaml"),
        &workload_group("v1", "  template:\n    serviceAcount: reviews\n"),
    )
    .expect_err("unknown field");
    let line = errors.to_string();
    assert!(
        line.contains(
            "WorkloadGroup shop/vms: spec.template.serviceAcount: unknown field `serviceAcount`; did you mean `serviceAccount`?"
        ),
        "{line}"
    );
}

#[test]
fn duplicate_workload_groups_are_reported() {
    let text = format!(
        "{}---\n{}",
        workload_group("v1", GROUP),
        workload_group("v1beta1", GROUP)
    );
    one_error(&text, &["WorkloadGroup shop/vms is defined again"]);
}

#[test]
fn member_labels_are_the_template_labels_overridden_by_the_group_metadata() {
    let text = workload_group(
        "v1",
        "  metadata:\n    labels: {app: reviews, version: v2}\n  template:\n    labels: {version: v1, tier: backend}\n",
    );
    let snapshot = load_str(Path::new("cfg.yaml"), &text).expect("loads");
    let labels = snapshot.workload_groups[0].spec.member_labels();
    let expected: Labels = [("app", "reviews"), ("tier", "backend"), ("version", "v2")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(labels, expected);
}
