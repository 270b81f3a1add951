//! Sidecar checks: egress listeners and their `namespace/host` hosts.

use super::check::Check;
use crate::config::error::Problem;
use crate::config::hosts::split_namespace;
use crate::config::model::Sidecar;

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
    }
}
