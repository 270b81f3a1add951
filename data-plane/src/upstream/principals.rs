//! The identities on an upstream TLS connection the agent originated, as
//! Istio's metrics name them: the first URI subject alt name of the
//! server's certificate (`destination_principal`, whose `/ns/<namespace>/`
//! is the destination's namespace) and of the agent's own
//! (`source_principal`).

use std::sync::Arc;

use rustls::ClientConnection;

use crate::proxy::identity::uri_san;

/// The SPIFFE ids on one upstream TLS connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principals {
    /// The server certificate's first URI SAN.
    pub peer: Option<String>,
    /// The agent's certificate's first URI SAN.
    pub local: Option<Arc<str>>,
}

impl Principals {
    /// The identities of an established `connection` whose client
    /// certificate (if any) names `local`; `None` when neither side has a
    /// URI SAN.
    pub(crate) fn of(connection: &ClientConnection, local: Option<&Arc<str>>) -> Option<Arc<Self>> {
        let peer = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| uri_san(cert.as_ref()));
        (peer.is_some() || local.is_some()).then(|| {
            Arc::new(Self {
                peer,
                local: local.cloned(),
            })
        })
    }

    /// The namespace of the server's SPIFFE id (`…/ns/<namespace>/sa/…`),
    /// as Istio's stats plugin reads it.
    pub fn peer_namespace(&self) -> Option<&str> {
        let peer = self.peer.as_deref()?;
        let start = peer.find("/ns/")? + "/ns/".len();
        let rest = &peer[start..];
        Some(rest.split('/').next().unwrap_or(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_read_from_the_servers_spiffe_id() {
        let principals = |peer: &str| Principals {
            peer: Some(peer.to_string()),
            local: None,
        };
        assert_eq!(
            principals(
                "spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account"
            )
            .peer_namespace(),
            Some("istio-system")
        );
        assert_eq!(
            principals("spiffe://td/ns/shop").peer_namespace(),
            Some("shop")
        );
        assert_eq!(principals("spiffe://td/sa/x").peer_namespace(), None);
        assert_eq!(
            Principals {
                peer: None,
                local: None
            }
            .peer_namespace(),
            None
        );
    }
}
