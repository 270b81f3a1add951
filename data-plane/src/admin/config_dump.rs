//! `/config_dump` in Envoy's shape: one `*ConfigDump` per resource type,
//! holding the dynamic resources as the control plane sent them.

use prost::Message;
use proto::pb::envoy::admin::v3::{
    ClientResourceStatus, ClustersConfigDump, EndpointsConfigDump, ListenersConfigDump,
    RoutesConfigDump,
    clusters_config_dump::DynamicCluster,
    endpoints_config_dump::DynamicEndpointConfig,
    listeners_config_dump::{DynamicListener, DynamicListenerState},
    routes_config_dump::DynamicRouteConfig,
};
use proto::pb::envoy::config::listener::v3::Listener;
use shared::type_url;

use crate::store::ConfigStore;

/// The config dump as JSON (protobuf canonical JSON, like Envoy's).
pub fn render(store: &ConfigStore) -> Result<serde_json::Value, proto::JsonError> {
    let accepted = store.accepted();
    let get = |type_url: &str| accepted.get(type_url).cloned().unwrap_or_default();
    let acked = ClientResourceStatus::Acked as i32;
    let clusters = ClustersConfigDump {
        dynamic_active_clusters: get(type_url::CLUSTER)
            .into_iter()
            .map(|cluster| DynamicCluster {
                cluster: Some(cluster),
                client_status: acked,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let endpoints = EndpointsConfigDump {
        dynamic_endpoint_configs: get(type_url::ENDPOINT)
            .into_iter()
            .map(|endpoint_config| DynamicEndpointConfig {
                endpoint_config: Some(endpoint_config),
                client_status: acked,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let listeners = ListenersConfigDump {
        dynamic_listeners: get(type_url::LISTENER)
            .into_iter()
            .map(|listener| DynamicListener {
                name: Listener::decode(listener.value.as_slice())
                    .map(|l| l.name)
                    .unwrap_or_default(),
                active_state: Some(DynamicListenerState {
                    listener: Some(listener),
                    ..Default::default()
                }),
                client_status: acked,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let routes = RoutesConfigDump {
        dynamic_route_configs: get(type_url::ROUTE)
            .into_iter()
            .map(|route_config| DynamicRouteConfig {
                route_config: Some(route_config),
                client_status: acked,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let configs = [
        proto::pack_named("envoy.admin.v3.ClustersConfigDump", &clusters),
        proto::pack_named("envoy.admin.v3.EndpointsConfigDump", &endpoints),
        proto::pack_named("envoy.admin.v3.ListenersConfigDump", &listeners),
        proto::pack_named("envoy.admin.v3.RoutesConfigDump", &routes),
    ]
    .iter()
    .map(proto::any_to_json_proto_names)
    .collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::json!({ "configs": configs }))
}
