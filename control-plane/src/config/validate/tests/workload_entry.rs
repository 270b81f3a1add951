//! WorkloadEntry validation: addresses.

use super::*;

#[test]
fn workload_entry_needs_an_address() {
    let entry = |spec: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: vm\nspec:\n{spec}"
        )
    };
    valid(&entry("  address: 10.0.0.7\n  labels: {app: vm}\n"));
    one_error(
        &entry("  labels: {app: vm}\n"),
        &["WorkloadEntry default/vm: spec.address: endpoint has no address"],
    );
}
