//! xDS resources for a fake ADS server to serve: minimal ones by name, and
//! the ones of a `control-plane dump`, given as protobuf JSON.

use std::collections::BTreeMap;

use prost::Message;
use proto::pb::envoy::config::cluster::v3::Cluster;
use proto::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use proto::pb::envoy::config::listener::v3::Listener;
use proto::pb::envoy::config::route::v3::RouteConfiguration;
use proto::wkt::Any;
use serde_json::Value;
use shared::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE, message_name, short_name};

/// Why JSON could not be packed as a resource.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("cannot pack resources of type {0}")]
    UnsupportedType(String),
    #[error(transparent)]
    Json(#[from] proto::JsonError),
}

/// One empty cluster per name.
pub fn clusters(names: &[&str]) -> Vec<Any> {
    by_name(CLUSTER, names, |name| Cluster {
        name,
        ..Default::default()
    })
}

/// One empty load assignment per cluster name.
pub fn endpoints(names: &[&str]) -> Vec<Any> {
    by_name(ENDPOINT, names, |cluster_name| ClusterLoadAssignment {
        cluster_name,
        ..Default::default()
    })
}

/// One empty listener per name.
pub fn listeners(names: &[&str]) -> Vec<Any> {
    by_name(LISTENER, names, |name| Listener {
        name,
        ..Default::default()
    })
}

/// One empty route configuration per name.
pub fn routes(names: &[&str]) -> Vec<Any> {
    by_name(ROUTE, names, |name| RouteConfiguration {
        name,
        ..Default::default()
    })
}

/// One resource of `type_url` per name, built by `message`.
fn by_name<M: Message>(type_url: &str, names: &[&str], message: impl Fn(String) -> M) -> Vec<Any> {
    names
        .iter()
        .map(|name| proto::pack(type_url, &message(name.to_string())))
        .collect()
}

/// The resources of a `control-plane dump --type all` (`{"clusters": [..],
/// "endpoints": [..], "listeners": [..], "routes": [..]}`), by type URL.
/// A missing key is an empty list.
pub fn resources_from_dump(dump: &Value) -> Result<BTreeMap<String, Vec<Any>>, PackError> {
    [CLUSTER, ENDPOINT, LISTENER, ROUTE]
        .into_iter()
        .map(|type_url| {
            let items = dump[short_name(type_url)]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            let packed = items
                .iter()
                .map(|item| pack(type_url, item))
                .collect::<Result<_, _>>()?;
            Ok((type_url.to_string(), packed))
        })
        .collect()
}

/// An xDS resource of type `type_url` (one of the four ADS types), given
/// as protobuf JSON, packed in an `Any`.
pub fn pack(type_url: &str, json: &Value) -> Result<Any, PackError> {
    let type_name = message_name(type_url);
    let value = match type_url {
        CLUSTER => proto::from_json::<Cluster>(type_name, json)?.encode_to_vec(),
        ENDPOINT => proto::from_json::<ClusterLoadAssignment>(type_name, json)?.encode_to_vec(),
        LISTENER => proto::from_json::<Listener>(type_name, json)?.encode_to_vec(),
        ROUTE => proto::from_json::<RouteConfiguration>(type_name, json)?.encode_to_vec(),
        other => return Err(PackError::UnsupportedType(other.to_string())),
    };
    Ok(Any {
        type_url: type_url.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::xds::client::resource_name;

    #[test]
    fn dump_resources_are_packed_by_type() {
        let dump = json!({
            "clusters": [{ "name": "outbound|80||httpbin.org" }],
            "listeners": [{ "name": "virtualOutbound" }],
            "routes": [{ "name": "80" }],
        });
        let resources = resources_from_dump(&dump).unwrap();
        let names = |type_url: &str| -> Vec<Option<String>> {
            resources[type_url].iter().map(resource_name).collect()
        };
        assert_eq!(names(CLUSTER), [Some("outbound|80||httpbin.org".into())]);
        assert_eq!(names(ENDPOINT), [] as [Option<String>; 0]);
        assert_eq!(names(LISTENER), [Some("virtualOutbound".into())]);
        assert_eq!(names(ROUTE), [Some("80".into())]);
        assert!(resources[CLUSTER].iter().all(|any| any.type_url == CLUSTER));
    }

    #[test]
    fn json_that_is_not_the_type_is_an_error() {
        let error = pack(CLUSTER, &json!({ "no_such_field": 1 })).unwrap_err();
        assert!(matches!(error, PackError::Json(_)), "{error}");
        let error = pack("type.googleapis.com/other", &json!({})).unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot pack resources of type type.googleapis.com/other"
        );
    }
}
