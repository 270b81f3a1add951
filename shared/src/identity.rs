//! Workload identity as both sides spell it: the SPIFFE id a certificate is
//! issued for and verified against, the default trust domain, and the name
//! the control plane's serving certificate is verified by.

use std::fmt;

/// The trust domain of a mesh that does not name one.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// The name proxies verify the control plane's serving certificate against
/// (istiod's service name, as pilot-agent checks it).
pub const CONTROL_PLANE_SERVER_NAME: &str = "istiod.istio-system.svc";

/// Who a workload is: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    pub trust_domain: String,
    pub namespace: String,
    pub service_account: String,
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "spiffe://{}/ns/{}/sa/{}",
            self.trust_domain, self.namespace, self.service_account
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_istios_spiffe_id() {
        let id = SpiffeId {
            trust_domain: DEFAULT_TRUST_DOMAIN.to_string(),
            namespace: "default".to_string(),
            service_account: "sleep".to_string(),
        };
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/default/sa/sleep");
    }
}
