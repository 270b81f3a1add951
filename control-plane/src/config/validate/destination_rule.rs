//! DestinationRule checks: host, subsets and port-level traffic policies.

use std::collections::HashMap;

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::{DestinationRule, TrafficPolicy};

impl Check<'_> {
    pub(super) fn destination_rule(&mut self, spec: &DestinationRule) {
        self.host("spec.host", &spec.host);
        if let Some(policy) = &spec.traffic_policy {
            self.traffic_policy("spec.trafficPolicy", policy);
        }
        let mut names: HashMap<&str, String> = HashMap::new();
        for (index, subset) in spec.subsets.iter().enumerate() {
            let field = format!("spec.subsets[{index}]");
            if subset.name.is_empty() {
                self.report(format!("{field}.name"), Problem::SubsetWithoutName);
            } else if let Some(first) = names.get(subset.name.as_str()) {
                let problem = Problem::DuplicateSubset {
                    name: subset.name.clone(),
                    first: first.clone(),
                };
                self.report(format!("{field}.name"), problem);
            } else {
                names.insert(&subset.name, field.clone());
            }
            if let Some(policy) = &subset.traffic_policy {
                self.traffic_policy(&format!("{field}.trafficPolicy"), policy);
            }
        }
    }

    fn traffic_policy(&mut self, field: &str, policy: &TrafficPolicy) {
        for (index, setting) in policy.port_level_settings.iter().enumerate() {
            if let Some(port) = setting.port {
                self.port_number(
                    format!("{field}.portLevelSettings[{index}].port.number"),
                    port.number,
                );
            }
        }
    }
}
