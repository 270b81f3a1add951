//! A response on its way to a proxy: its own fields, and the resources it
//! carries as references into the translation that every proxy of the same
//! kind shares. The resources are written straight from there into the
//! response's gRPC frame, so a push copies each resource once, into the
//! frame, instead of cloning it into a response message and then encoding
//! that.

use std::sync::Arc;

use bytes::BufMut;
use prost::Message;
use prost::encoding::{self, WireType};
use proto::pb::envoy::service::discovery::v3::{DeltaDiscoveryResponse, DiscoveryResponse};

use super::cache::VersionedResource;

/// `resources` is field 2 of both DiscoveryResponse and DeltaDiscoveryResponse.
const RESOURCES: u32 = 2;
/// Fields of the delta `Resource`.
const RESOURCE_VERSION: u32 = 1;
const RESOURCE_ANY: u32 = 2;
const RESOURCE_NAME: u32 = 3;

/// A response without its resources, and the resources it carries.
#[derive(Debug, Clone)]
pub struct Outgoing<M> {
    pub head: M,
    pub resources: Vec<Arc<VersionedResource>>,
}

/// How a response type carries one resource.
pub trait Carrier: Message + Sized {
    /// The bytes the resource adds to the encoded response.
    fn resource_len(resource: &VersionedResource) -> usize;
    fn encode_resource(resource: &VersionedResource, buf: &mut impl BufMut);
}

impl Carrier for DiscoveryResponse {
    fn resource_len(resource: &VersionedResource) -> usize {
        encoding::message::encoded_len(RESOURCES, &resource.any)
    }

    fn encode_resource(resource: &VersionedResource, buf: &mut impl BufMut) {
        encoding::message::encode(RESOURCES, &resource.any, buf);
    }
}

/// The encoded length of a delta `Resource`'s fields (name, version, the
/// resource itself).
fn delta_resource_body_len(resource: &VersionedResource) -> usize {
    str_field_len(RESOURCE_VERSION, &resource.version)
        + encoding::message::encoded_len(RESOURCE_ANY, &resource.any)
        + str_field_len(RESOURCE_NAME, &resource.name)
}

impl Carrier for DeltaDiscoveryResponse {
    fn resource_len(resource: &VersionedResource) -> usize {
        let body = delta_resource_body_len(resource);
        encoding::key_len(RESOURCES) + encoding::encoded_len_varint(body as u64) + body
    }

    fn encode_resource(resource: &VersionedResource, buf: &mut impl BufMut) {
        encoding::encode_key(RESOURCES, WireType::LengthDelimited, buf);
        encoding::encode_varint(delta_resource_body_len(resource) as u64, buf);
        encode_str_field(RESOURCE_VERSION, &resource.version, buf);
        encoding::message::encode(RESOURCE_ANY, &resource.any, buf);
        encode_str_field(RESOURCE_NAME, &resource.name, buf);
    }
}

/// A string field as proto3 writes it: absent when empty.
fn str_field_len(tag: u32, value: &str) -> usize {
    if value.is_empty() {
        return 0;
    }
    encoding::key_len(tag) + encoding::encoded_len_varint(value.len() as u64) + value.len()
}

fn encode_str_field(tag: u32, value: &str, buf: &mut impl BufMut) {
    if value.is_empty() {
        return;
    }
    encoding::encode_key(tag, WireType::LengthDelimited, buf);
    encoding::encode_varint(value.len() as u64, buf);
    buf.put_slice(value.as_bytes());
}

impl<M: Carrier> Outgoing<M> {
    pub fn encoded_len(&self) -> usize {
        self.head.encoded_len()
            + self
                .resources
                .iter()
                .map(|r| M::resource_len(r))
                .sum::<usize>()
    }

    /// Writes the response's protobuf encoding: its own fields, then its
    /// resources (a repeated field may come after the others).
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.head.encode_raw(buf);
        for resource in &self.resources {
            M::encode_resource(resource, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::pb::envoy::config::core::v3::ControlPlane;
    use proto::pb::envoy::service::discovery::v3::Resource;
    use proto::wkt::Any;

    use super::*;

    fn resource(name: &str, version: &str) -> Arc<VersionedResource> {
        Arc::new(VersionedResource {
            name: name.into(),
            version: version.into(),
            any: Any {
                type_url: shared::type_url::CLUSTER.into(),
                value: name.as_bytes().repeat(40),
            },
        })
    }

    fn encoded<M: Carrier>(outgoing: &Outgoing<M>) -> Vec<u8> {
        let mut buf = Vec::new();
        outgoing.encode(&mut buf);
        assert_eq!(buf.len(), outgoing.encoded_len());
        buf
    }

    #[test]
    fn state_of_the_world_decodes_as_the_message_it_stands_for() {
        let outgoing = Outgoing {
            head: DiscoveryResponse {
                version_info: "v1".into(),
                type_url: shared::type_url::CLUSTER.into(),
                nonce: "7".into(),
                control_plane: Some(ControlPlane {
                    identifier: "cp".into(),
                }),
                ..Default::default()
            },
            resources: vec![resource("a", "1"), resource("b", "2")],
        };
        let decoded = DiscoveryResponse::decode(&encoded(&outgoing)[..]).unwrap();
        let expected = DiscoveryResponse {
            resources: outgoing.resources.iter().map(|r| r.any.clone()).collect(),
            ..outgoing.head.clone()
        };
        assert_eq!(decoded, expected);
        assert_eq!(decoded.resources.len(), 2);
    }

    #[test]
    fn delta_decodes_as_the_message_it_stands_for() {
        let outgoing = Outgoing {
            head: DeltaDiscoveryResponse {
                system_version_info: "v2".into(),
                type_url: shared::type_url::CLUSTER.into(),
                removed_resources: vec!["gone".into()],
                nonce: "8".into(),
                ..Default::default()
            },
            resources: vec![resource("a", "1"), resource("b", "")],
        };
        let decoded = DeltaDiscoveryResponse::decode(&encoded(&outgoing)[..]).unwrap();
        let expected = DeltaDiscoveryResponse {
            resources: outgoing
                .resources
                .iter()
                .map(|r| Resource {
                    name: r.name.to_string(),
                    version: r.version.to_string(),
                    resource: Some(r.any.clone()),
                    ..Default::default()
                })
                .collect(),
            ..outgoing.head.clone()
        };
        assert_eq!(decoded, expected);
        assert_eq!(decoded.resources[0].name, "a");
        assert_eq!(decoded.resources[0].version, "1");
        assert_eq!(decoded.resources[1].version, "");
    }
}
