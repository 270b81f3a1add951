//! WorkloadGroup checks: a template without an address, locality or
//! network, and no probe.

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::WorkloadGroup;

impl Check<'_> {
    /// A WorkloadGroup as istiod validates it, refusing what this mesh
    /// cannot honour: a probe, and a template's locality or network.
    pub(super) fn workload_group(&mut self, group: &WorkloadGroup) {
        match &group.template {
            None => self.report("spec.template", Problem::WorkloadGroupWithoutTemplate),
            Some(template) => {
                if !template.address.is_empty() {
                    let address = template.address.clone();
                    self.report(
                        "spec.template.address",
                        Problem::TemplateWithAddress { address },
                    );
                }
                let unsupported = [
                    (
                        "locality",
                        &template.locality,
                        "it has no locality-aware load balancing",
                    ),
                    (
                        "network",
                        &template.network,
                        "all workloads share one network; it has no network gateways",
                    ),
                ];
                for (field, value, reason) in unsupported {
                    if !value.is_empty() {
                        self.report(
                            format!("spec.template.{field}"),
                            Problem::TemplateFieldNotSupported {
                                field,
                                value: value.clone(),
                                reason,
                            },
                        );
                    }
                }
                for (name, number) in &template.ports {
                    self.port_number(format!("spec.template.ports.{name}"), *number);
                }
            }
        }
        if group.probe.is_some() {
            self.report("spec.probe", Problem::ProbeNotSupported);
        }
    }
}
