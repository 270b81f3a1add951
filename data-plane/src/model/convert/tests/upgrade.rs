//! HTTP upgrades: a connection manager's `upgrade_configs` as istiod sends
//! them (`websocket`), a route's overriding them, and each setting the
//! agent cannot honour rejected by its field.

use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::config::route::v3::route_action::{
    UpgradeConfig as RouteUpgrade, upgrade_config::ConnectConfig,
};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager,
    http_connection_manager::UpgradeConfig,
};
use proto::wkt::BoolValue;

use super::route::{base, forward, route_action};
use super::{assert_rejected, pack, socket_address, starting};
use crate::model::convert::listener::HCM;
use crate::model::listener::ChainAction;
use crate::model::secret::SecretSources;
use crate::model::upgrade::{UpgradeConfigs, UpgradeType};
use crate::model::{Error, listener_from_proto, route_config_from_proto};

fn manager(upgrade_configs: Vec<UpgradeConfig>) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: "outbound_0.0.0.0_80".into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: "80".into(),
            ..Default::default()
        })),
        upgrade_configs,
        ..Default::default()
    }
}

fn upgrades(manager: &HttpConnectionManager) -> Result<UpgradeConfigs, Error> {
    let listener = Listener {
        name: "0.0.0.0_80".into(),
        address: Some(socket_address("0.0.0.0", 80)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(HCM, manager))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let converted = listener_from_proto(&listener, &SecretSources::default())?;
    let ChainAction::Http(hcm) = &converted.filter_chains[0].action else {
        panic!("expected an HTTP connection manager");
    };
    Ok(hcm.upgrades.clone())
}

fn upgrade(upgrade_type: &str, enabled: Option<bool>) -> UpgradeConfig {
    UpgradeConfig {
        upgrade_type: upgrade_type.into(),
        enabled: enabled.map(|value| BoolValue { value }),
        ..Default::default()
    }
}

fn route_upgrade(upgrade_type: &str, enabled: Option<bool>) -> RouteUpgrade {
    RouteUpgrade {
        upgrade_type: upgrade_type.into(),
        enabled: enabled.map(|value| BoolValue { value }),
        connect_config: None,
    }
}

#[test]
fn istiod_s_websocket_upgrade_is_enabled_by_default_in_any_case() {
    let configs = upgrades(&manager(vec![upgrade("websocket", None)])).unwrap();
    assert!(configs.allows(&[], "websocket"));
    assert!(configs.allows(&[], "WebSocket"));
    assert!(!configs.allows(&[], "h2c"));
}

#[test]
fn no_upgrade_configs_allow_no_upgrade() {
    let configs = upgrades(&manager(Vec::new())).unwrap();
    assert!(!configs.allows(&[], "websocket"));
}

#[test]
fn a_disabled_upgrade_is_refused_unless_a_route_enables_it() {
    let configs = upgrades(&manager(vec![upgrade("WEBSOCKET", Some(false))])).unwrap();
    assert!(!configs.allows(&[], "websocket"));
    assert!(configs.allows(&[UpgradeType::new("websocket", true)], "websocket"));
}

#[test]
fn connection_manager_upgrade_settings_it_cannot_honour_are_rejected() {
    let with_filters = UpgradeConfig {
        filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            ..Default::default()
        }],
        ..upgrade("websocket", None)
    };
    let cases = [
        (
            vec![with_filters],
            "upgrade_configs[0].filters",
            "an upgrade's own filter chain is not supported",
        ),
        (
            vec![upgrade("CONNECT", None)],
            "upgrade_configs[0].upgrade_type",
            "CONNECT is not supported",
        ),
        (
            vec![
                upgrade("websocket", None),
                upgrade("WebSocket", Some(false)),
            ],
            "upgrade_configs[1].upgrade_type",
            "upgrade type \"WebSocket\" is configured twice",
        ),
        (
            vec![upgrade("", None)],
            "upgrade_configs[0].upgrade_type",
            "\"\" is not an upgrade token",
        ),
    ];
    for (configs, field, reason) in cases {
        assert_rejected(
            upgrades(&manager(configs)),
            "listener",
            "0.0.0.0_80",
            &format!("filter_chains[0].http_connection_manager.{field}"),
            starting(reason),
        );
    }
}

#[test]
fn a_route_s_upgrade_configs_override_per_type() {
    let mut rc = base();
    route_action(&mut rc).upgrade_configs = vec![
        route_upgrade("WebSocket", Some(false)),
        route_upgrade("spdy/3", None),
    ];
    assert_eq!(
        forward(&rc).upgrades,
        [
            UpgradeType::new("websocket", false),
            UpgradeType::new("spdy/3", true)
        ]
    );
    assert!(forward(&base()).upgrades.is_empty());
}

#[test]
fn a_route_s_connect_config_and_connect_type_are_rejected() {
    let mut rc = base();
    route_action(&mut rc).upgrade_configs = vec![RouteUpgrade {
        connect_config: Some(ConnectConfig::default()),
        ..route_upgrade("CONNECT", None)
    }];
    assert_rejected(
        route_config_from_proto(&rc),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].route.upgrade_configs[0].connect_config",
        starting("CONNECT payload forwarding is not supported"),
    );
    route_action(&mut rc).upgrade_configs = vec![route_upgrade("connect", None)];
    assert_rejected(
        route_config_from_proto(&rc),
        "route configuration",
        "80",
        "virtual_hosts[0].routes[0].route.upgrade_configs[0].upgrade_type",
        starting("CONNECT is not supported"),
    );
}
