//! One state-of-the-world SDS stream (`StreamSecrets`): what the Envoy asked
//! for, what it was last sent, and when to send again — a new set of names,
//! a new certificate — while ACKs, NACKs and stale nonces send nothing.

use proto::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use shared::type_url;

use super::secrets;
use super::service::Protocol;
use crate::identity::WorkloadCertificate;

#[derive(Default)]
pub(super) struct SotwStream {
    /// The names of the last request.
    names: Vec<String>,
    /// The nonce of the last response; empty before the first.
    nonce: String,
    sent: u64,
}

impl Protocol for SotwStream {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;

    fn on_request(
        &mut self,
        request: &DiscoveryRequest,
        current: &WorkloadCertificate,
    ) -> Option<DiscoveryResponse> {
        if !request.response_nonce.is_empty() && request.response_nonce != self.nonce {
            return None;
        }
        if let Some(error) = &request.error_detail {
            secrets::warn_rejected(&request.response_nonce, &error.message);
            return None;
        }
        let first = self.nonce.is_empty();
        if !first && request.resource_names == self.names {
            return None;
        }
        self.names.clone_from(&request.resource_names);
        self.response(current)
    }

    fn on_rotation(&mut self, current: &WorkloadCertificate) -> Option<DiscoveryResponse> {
        if self.nonce.is_empty() {
            return None;
        }
        self.response(current)
    }
}

impl SotwStream {
    fn response(&mut self, current: &WorkloadCertificate) -> Option<DiscoveryResponse> {
        if self.names.is_empty() {
            return None;
        }
        for name in self.names.iter().filter(|n| !secrets::is_served(n)) {
            secrets::warn_not_served(name);
        }
        self.sent += 1;
        self.nonce = self.sent.to_string();
        Some(DiscoveryResponse {
            version_info: secrets::version(current),
            resources: self
                .names
                .iter()
                .filter_map(|name| secrets::packed(name, current))
                .collect(),
            type_url: type_url::SECRET.to_string(),
            nonce: self.nonce.clone(),
            ..Default::default()
        })
    }
}
