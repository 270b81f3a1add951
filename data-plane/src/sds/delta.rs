//! One delta SDS stream (`DeltaSecrets`): the names subscribed to, each sent
//! when it is subscribed (unless the Envoy already holds that version) and
//! again at every new certificate; a name this agent does not have is
//! answered as removed.

use std::collections::BTreeSet;

use proto::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use shared::type_url;

use super::secrets;
use super::service::Protocol;
use crate::identity::WorkloadCertificate;

#[derive(Default)]
pub(super) struct DeltaStream {
    subscribed: BTreeSet<String>,
    sent: u64,
}

impl Protocol for DeltaStream {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;

    fn on_request(
        &mut self,
        request: &DeltaDiscoveryRequest,
        current: &WorkloadCertificate,
    ) -> Option<DeltaDiscoveryResponse> {
        if let Some(error) = &request.error_detail {
            secrets::warn_rejected(&request.response_nonce, &error.message);
        }
        for name in &request.resource_names_unsubscribe {
            self.subscribed.remove(name);
        }
        let version = secrets::version(current);
        let new: Vec<&String> = request
            .resource_names_subscribe
            .iter()
            .filter(|name| self.subscribed.insert((*name).clone()))
            .filter(|name| request.initial_resource_versions.get(*name) != Some(&version))
            .collect();
        if new.is_empty() {
            return None;
        }
        self.response(new, current)
    }

    fn on_rotation(&mut self, current: &WorkloadCertificate) -> Option<DeltaDiscoveryResponse> {
        if self.subscribed.is_empty() {
            return None;
        }
        let names: Vec<String> = self.subscribed.iter().cloned().collect();
        self.response(names.iter().collect(), current)
    }
}

impl DeltaStream {
    fn response(
        &mut self,
        names: Vec<&String>,
        current: &WorkloadCertificate,
    ) -> Option<DeltaDiscoveryResponse> {
        let version = secrets::version(current);
        let (served, unknown): (Vec<&String>, Vec<&String>) =
            names.into_iter().partition(|name| secrets::is_served(name));
        for name in &unknown {
            secrets::warn_not_served(name);
        }
        self.sent += 1;
        Some(DeltaDiscoveryResponse {
            system_version_info: version.clone(),
            resources: served
                .into_iter()
                .filter_map(|name| {
                    Some(Resource {
                        name: name.clone(),
                        version: version.clone(),
                        resource: Some(secrets::packed(name, current)?),
                        ..Default::default()
                    })
                })
                .collect(),
            type_url: type_url::SECRET.to_string(),
            removed_resources: unknown.into_iter().cloned().collect(),
            nonce: self.sent.to_string(),
            ..Default::default()
        })
    }
}
