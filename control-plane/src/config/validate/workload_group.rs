//! WorkloadGroup checks: a template, without an address.

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::WorkloadGroup;

impl Check<'_> {
    /// A WorkloadGroup as istiod validates it.
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
                for (name, number) in &template.ports {
                    self.port_number(format!("spec.template.ports.{name}"), *number);
                }
            }
        }
    }
}
