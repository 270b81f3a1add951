//! Sidecar checks: egress listeners and their `namespace/host` hosts, and
//! the dry-run annotation.

use super::check::Check;
use crate::config::error::Problem;
use crate::config::hosts::split_namespace;
use crate::config::model::{DRY_RUN_ANNOTATION, OutboundMode, Sidecar};

impl Check<'_> {
    pub(super) fn sidecar(&mut self, spec: &Sidecar) {
        for (index, listener) in spec.egress.iter().enumerate() {
            let field = format!("spec.egress[{index}]");
            if listener.hosts.is_empty() {
                self.report(format!("{field}.hosts"), Problem::EgressWithoutHosts);
            }
            for (at, host) in listener.hosts.iter().enumerate() {
                let here = format!("{field}.hosts[{at}]");
                match split_namespace(host) {
                    (Some(_), dns_name) => self.host(&here, dns_name),
                    (None, _) => {
                        let host = host.clone();
                        self.report(here, Problem::EgressHostWithoutNamespace { host });
                    }
                }
            }
        }
        self.dry_run(spec);
    }

    /// `istio.io/dry-run` is `"true"` or `"false"`, on a REGISTRY_ONLY
    /// Sidecar only.
    fn dry_run(&mut self, spec: &Sidecar) {
        let Some(value) = self.meta.annotations.get(DRY_RUN_ANNOTATION) else {
            return;
        };
        let field = format!("metadata.annotations.{DRY_RUN_ANNOTATION}");
        if !matches!(value.as_str(), "true" | "false") {
            let value = value.clone();
            self.report(field, Problem::DryRunNotBool { value });
        } else if spec.outbound_traffic_policy.map(|p| p.mode) != Some(OutboundMode::RegistryOnly) {
            self.report(field, Problem::DryRunWithoutRegistryOnly);
        }
    }
}
