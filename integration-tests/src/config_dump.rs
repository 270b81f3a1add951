//! What a proxy's `/config_dump` says it holds from xDS, read the same way
//! for Envoy and our agent (both name the fields as the protos do:
//! `dynamic_active_clusters`, `socket_address`, ..).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

/// The xDS resources in a config dump, by name.
#[derive(Debug, Clone, Default)]
pub struct DynamicResources {
    /// Active clusters.
    pub clusters: BTreeMap<String, Value>,
    /// Listeners in service (`active_state`).
    pub listeners: BTreeMap<String, Value>,
    /// Route configurations.
    pub routes: BTreeMap<String, Value>,
    /// EDS endpoints (`ip:port`) by cluster (in Envoy's dump with
    /// `?include_eds` only).
    pub endpoints: BTreeMap<String, Vec<String>>,
    /// The `error_state` of any resource whose last update was rejected.
    pub errors: Vec<Value>,
}

impl DynamicResources {
    pub fn parse(dump: &Value) -> Result<Self> {
        let configs = dump["configs"]
            .as_array()
            .with_context(|| format!("config dump without configs: {dump}"))?;
        let mut found = Self::default();
        for config in configs {
            let items = |field: &str| config[field].as_array().cloned().unwrap_or_default();
            for item in items("dynamic_active_clusters") {
                insert_named(&mut found.clusters, &item["cluster"]);
                found.errors.extend(error_state(&item));
            }
            for item in items("dynamic_warming_clusters") {
                found.errors.extend(error_state(&item));
            }
            for item in items("dynamic_listeners") {
                insert_named(&mut found.listeners, &item["active_state"]["listener"]);
                found.errors.extend(error_state(&item));
            }
            for item in items("dynamic_route_configs") {
                insert_named(&mut found.routes, &item["route_config"]);
            }
            for item in items("dynamic_endpoint_configs") {
                let assignment = &item["endpoint_config"];
                if let Some(cluster) = assignment["cluster_name"].as_str() {
                    found
                        .endpoints
                        .insert(cluster.to_string(), endpoint_addresses(assignment));
                }
            }
        }
        Ok(found)
    }

    /// The route configuration, listener or cluster named `name` (looked
    /// up in that order).
    pub fn resource(&self, name: &str) -> Option<&Value> {
        self.routes
            .get(name)
            .or_else(|| self.listeners.get(name))
            .or_else(|| self.clusters.get(name))
    }
}

fn insert_named(resources: &mut BTreeMap<String, Value>, resource: &Value) {
    if let Some(name) = resource["name"].as_str() {
        resources.insert(name.to_string(), resource.clone());
    }
}

fn error_state(item: &Value) -> Option<Value> {
    Some(item.get("error_state")?.clone())
}

/// `ip:port` of every endpoint of a ClusterLoadAssignment.
fn endpoint_addresses(assignment: &Value) -> Vec<String> {
    let list = |value: &Value, name: &str| value[name].as_array().cloned().unwrap_or_default();
    list(assignment, "endpoints")
        .iter()
        .flat_map(|locality| list(locality, "lb_endpoints"))
        .map(|lb_endpoint| {
            let address = &lb_endpoint["endpoint"]["address"]["socket_address"];
            format!(
                "{}:{}",
                address["address"].as_str().unwrap_or_default(),
                address["port_value"]
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn dump() -> Value {
        json!({ "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "dynamic_active_clusters": [
                    { "cluster": { "name": "outbound|80||httpbin.org" } },
                ],
                "dynamic_warming_clusters": [
                    { "cluster": { "name": "warming" }, "error_state": { "details": "bad" } },
                ],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump",
                "dynamic_endpoint_configs": [{ "endpoint_config": {
                    "cluster_name": "outbound|80|cnn|gw",
                    "endpoints": [{ "lb_endpoints": [
                        { "endpoint": { "address": { "socket_address":
                            { "address": "10.0.0.7", "port_value": 8080 } } } },
                    ] }],
                } }],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
                "dynamic_listeners": [
                    { "name": "virtualOutbound",
                      "active_state": { "listener": { "name": "virtualOutbound", "port": 1 } } },
                    { "name": "0.0.0.0_80", "error_state": { "details": "nacked" } },
                ],
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamic_route_configs": [{ "route_config": { "name": "80" } }],
            },
        ] })
    }

    #[test]
    fn reads_active_resources_by_name_and_rejections() {
        let resources = DynamicResources::parse(&dump()).unwrap();
        assert_eq!(
            resources.clusters.keys().collect::<Vec<_>>(),
            ["outbound|80||httpbin.org"]
        );
        assert_eq!(
            resources.listeners.keys().collect::<Vec<_>>(),
            ["virtualOutbound"],
            "a listener without an active state is not in service"
        );
        assert_eq!(resources.routes.keys().collect::<Vec<_>>(), ["80"]);
        assert_eq!(
            resources.errors,
            [json!({ "details": "bad" }), json!({ "details": "nacked" })]
        );
        assert_eq!(
            resources.resource("virtualOutbound"),
            Some(&json!({ "name": "virtualOutbound", "port": 1 }))
        );
        assert_eq!(resources.resource("nothing"), None);
    }

    #[test]
    fn reads_eds_endpoints_as_addresses() {
        let resources = DynamicResources::parse(&dump()).unwrap();
        assert_eq!(resources.endpoints["outbound|80|cnn|gw"], ["10.0.0.7:8080"]);
    }

    #[test]
    fn a_dump_without_configs_is_an_error() {
        assert!(DynamicResources::parse(&json!({})).is_err());
    }
}
