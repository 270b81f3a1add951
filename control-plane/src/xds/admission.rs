//! Which proxy a verified caller may be: the node's namespace and
//! `SERVICE_ACCOUNT` must be its token's, and the workload it becomes
//! carries the token's service account, trusted as a gateway only for the
//! service accounts the control plane was told to trust.

use std::collections::BTreeSet;

use proto::pb::envoy::config::core::v3::Node;
use proto::wkt::value::Kind;
use shared::node::{self, NodeId, NodeType};

use crate::auth::{AuthError, ServiceAccount};
use crate::translate::{Proxy, Workload};

/// The egress gateway's service account in Istio's default install.
pub const DEFAULT_GATEWAY_SERVICE_ACCOUNT: &str =
    "istio-system/istio-egressgateway-service-account";

/// The service accounts whose router proxies are gateway endpoints
/// (`--gateway-service-account`).
#[derive(Debug, Clone, Default)]
pub struct TrustedGateways(BTreeSet<ServiceAccount>);

impl TrustedGateways {
    pub fn new(accounts: impl IntoIterator<Item = ServiceAccount>) -> Self {
        Self(accounts.into_iter().collect())
    }

    pub(super) fn trusts(&self, account: &ServiceAccount) -> bool {
        self.0.contains(account)
    }
}

/// A proxy the caller may be, and the workload it is while connected.
#[derive(Debug)]
pub struct Admitted {
    pub proxy: Proxy,
    pub workload: Option<Workload>,
}

/// Admits `proxy` (read from `node`) for a caller with `account`, or
/// refuses it when the node claims another namespace or service account.
/// A node without `SERVICE_ACCOUNT` takes the token's.
pub fn admit(
    node: &Node,
    mut proxy: Proxy,
    account: &ServiceAccount,
    gateways: &TrustedGateways,
) -> Result<Admitted, AuthError> {
    let id_namespace = node
        .id
        .parse::<NodeId>()
        .ok()
        .and_then(|id| id.namespace().map(str::to_string));
    let claimed_account = service_account_metadata(node);
    let claimed_namespace = [Some(&proxy.namespace), id_namespace.as_ref()]
        .into_iter()
        .flatten()
        .find(|ns| **ns != account.namespace);
    let claimed_name = claimed_account.filter(|sa| *sa != account.name);
    if claimed_namespace.is_some() || claimed_name.is_some() {
        return Err(AuthError::NodeMismatch {
            claimed: format!(
                "{}/{}",
                claimed_namespace.unwrap_or(&account.namespace),
                claimed_name.as_deref().unwrap_or(&account.name)
            ),
            token: account.to_string(),
        });
    }
    proxy.service_account = account.name.clone();
    let workload = proxy.as_workload().map(|workload| Workload {
        service_account: account.name.clone(),
        trusted_gateway: proxy.node_type == NodeType::Router && gateways.trusts(account),
        ..workload.with_node_metadata(node)
    });
    Ok(Admitted { proxy, workload })
}

/// The node's `SERVICE_ACCOUNT` metadata, when it has one.
fn service_account_metadata(node: &Node) -> Option<String> {
    let value = node
        .metadata
        .as_ref()?
        .fields
        .get(node::META_SERVICE_ACCOUNT)?;
    match value.kind.as_ref()? {
        Kind::StringValue(sa) if !sa.is_empty() => Some(sa.clone()),
        _ => None,
    }
}
