//! The Envoy v3 API as the rest of the workspace sees it: the prost types
//! (re-exported from `envoy-types`), packing them into `Any`, the descriptor
//! set that describes them, and conversion of any message to and from
//! protobuf's canonical JSON.

use std::sync::LazyLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

pub use envoy_types::pb;
pub use prost;

/// Well-known protobuf types (`Any`, `Duration`, `Struct`...) as the Envoy
/// types use them.
pub use envoy_types::pb::google::protobuf as wkt;

/// Packs `message` as an `Any` with the full `type_url`
/// (`type.googleapis.com/...`).
pub fn pack(type_url: &str, message: &impl Message) -> wkt::Any {
    wkt::Any {
        type_url: type_url.to_string(),
        value: message.encode_to_vec(),
    }
}

/// Packs `message`, whose full protobuf name is `type_name`, as an `Any`.
pub fn pack_named(type_name: &str, message: &impl Message) -> wkt::Any {
    pack(&format!("type.googleapis.com/{type_name}"), message)
}

/// Istio's certificate API (`istio.v1.auth.IstioCertificateService`): a CSR
/// in, the signed chain out.
pub mod sds;

pub mod istio_ca {
    tonic::include_proto!("istio.v1.auth");
}

/// The serialized `FileDescriptorSet` of Istio's certificate API, for
/// reflection (its imports are in [`FILE_DESCRIPTOR_SET`]).
pub const CA_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ca_descriptor.bin"));

/// Istio's name table (`istio.networking.nds.v1.NameTable`): the hosts a
/// proxy's DNS proxy answers for, sent over xDS (NDS).
pub mod nds {
    tonic::include_proto!("istio.networking.nds.v1");
}

/// The serialized `FileDescriptorSet` of Istio's name table, for reflection.
pub const NDS_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/nds_descriptor.bin"));

/// The serialized `FileDescriptorSet` of every Envoy, xDS and Google API file.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptor.bin"));

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    let mut pool =
        DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the embedded descriptor set is valid");
    pool.decode_file_descriptor_set(NDS_FILE_DESCRIPTOR_SET)
        .expect("the embedded name table descriptor set is valid");
    pool
});

/// The descriptor pool built from [`FILE_DESCRIPTOR_SET`] and
/// [`NDS_FILE_DESCRIPTOR_SET`].
pub fn descriptor_pool() -> &'static DescriptorPool {
    &POOL
}

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("unknown protobuf message type {0}")]
    UnknownType(String),
    #[error("cannot decode {type_name}: {source}")]
    Decode {
        type_name: String,
        source: prost::DecodeError,
    },
    #[error("cannot convert {type_name} to JSON: {source}")]
    Serialize {
        type_name: String,
        source: serde_json::Error,
    },
    #[error("cannot read {type_name} from JSON: {source}")]
    Deserialize {
        type_name: String,
        source: serde_json::Error,
    },
}

/// Converts the encoded message of type `type_name` (a full name such as
/// `envoy.config.cluster.v3.Cluster`) to canonical protobuf JSON. `Any`
/// fields are expanded with their `@type`, as Envoy's config_dump does.
pub fn bytes_to_json(type_name: &str, bytes: &[u8]) -> Result<serde_json::Value, JsonError> {
    encode_json(type_name, bytes, &SerializeOptions::new())
}

/// Like [`any_to_json`], but with the `.proto` field names
/// (`dynamic_active_clusters`), as Envoy's admin `/config_dump` writes them.
pub fn any_to_json_proto_names(any: &wkt::Any) -> Result<serde_json::Value, JsonError> {
    encode_json(
        "google.protobuf.Any",
        &any.encode_to_vec(),
        &SerializeOptions::new().use_proto_field_name(true),
    )
}

/// Writes the encoded message of type `type_name` to `out` as pretty-printed
/// canonical protobuf JSON with the `.proto` field names, as Envoy's admin
/// `/config_dump` does, field by field without building the JSON first.
/// An error writing to `out` is a [`JsonError::Serialize`] whose source
/// `is_io()`.
pub fn write_pretty_json_proto_names(
    type_name: &str,
    bytes: &[u8],
    out: impl std::io::Write,
) -> Result<(), JsonError> {
    let message = decode_dynamic(type_name, bytes)?;
    let mut serializer = serde_json::Serializer::pretty(out);
    message
        .serialize_with_options(
            &mut serializer,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .map_err(|source| JsonError::Serialize {
            type_name: type_name.to_string(),
            source,
        })
}

fn decode_dynamic(type_name: &str, bytes: &[u8]) -> Result<DynamicMessage, JsonError> {
    let descriptor = descriptor_pool()
        .get_message_by_name(type_name)
        .ok_or_else(|| JsonError::UnknownType(type_name.to_string()))?;
    DynamicMessage::decode(descriptor, bytes).map_err(|source| JsonError::Decode {
        type_name: type_name.to_string(),
        source,
    })
}

fn encode_json(
    type_name: &str,
    bytes: &[u8],
    options: &SerializeOptions,
) -> Result<serde_json::Value, JsonError> {
    decode_dynamic(type_name, bytes)?
        .serialize_with_options(serde_json::value::Serializer, options)
        .map_err(|source| JsonError::Serialize {
            type_name: type_name.to_string(),
            source,
        })
}

/// Converts a prost message of type `type_name` to canonical protobuf JSON.
pub fn to_json<M: Message>(type_name: &str, message: &M) -> Result<serde_json::Value, JsonError> {
    bytes_to_json(type_name, &message.encode_to_vec())
}

/// Converts an `Any` to canonical protobuf JSON (with `@type`).
pub fn any_to_json(any: &wkt::Any) -> Result<serde_json::Value, JsonError> {
    to_json("google.protobuf.Any", any)
}

/// Reads canonical protobuf JSON into a prost message of type `type_name`.
pub fn from_json<M: Message + Default>(
    type_name: &str,
    json: &serde_json::Value,
) -> Result<M, JsonError> {
    let descriptor = descriptor_pool()
        .get_message_by_name(type_name)
        .ok_or_else(|| JsonError::UnknownType(type_name.to_string()))?;
    let dynamic =
        DynamicMessage::deserialize(descriptor, json).map_err(|source| JsonError::Deserialize {
            type_name: type_name.to_string(),
            source,
        })?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|source| JsonError::Decode {
        type_name: type_name.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::envoy::config::cluster::v3::Cluster;

    #[test]
    fn descriptor_set_knows_the_xds_services() {
        let pool = descriptor_pool();
        for service in [
            "envoy.service.discovery.v3.AggregatedDiscoveryService",
            "envoy.service.status.v3.ClientStatusDiscoveryService",
            "envoy.service.secret.v3.SecretDiscoveryService",
        ] {
            assert!(pool.get_service_by_name(service).is_some(), "{service}");
        }
    }

    #[test]
    fn cluster_round_trips_through_json() {
        let cluster = Cluster {
            name: "outbound|80||httpbin.org".into(),
            ..Default::default()
        };
        let json = to_json("envoy.config.cluster.v3.Cluster", &cluster).unwrap();
        assert_eq!(json["name"], "outbound|80||httpbin.org");
        let back: Cluster = from_json("envoy.config.cluster.v3.Cluster", &json).unwrap();
        assert_eq!(back, cluster);
    }
}
