//! HTTP upgrade settings → model: an HTTP connection manager's
//! `upgrade_configs` and a route action's. What the agent cannot honour is
//! refused: an upgrade with its own filter chain, `CONNECT` (the agent does
//! not tunnel it), a route's `connect_config`.

use proto::pb::envoy::config::route::v3::route_action::UpgradeConfig as PbRouteUpgrade;
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::UpgradeConfig as PbUpgrade;

use super::At;
use crate::model::Error;
use crate::model::upgrade::{UpgradeConfigs, UpgradeType};

/// A connection manager's `upgrade_configs`.
pub(super) fn upgrade_configs(configs: &[PbUpgrade], at: &At<'_>) -> Result<UpgradeConfigs, Error> {
    let mut types: Vec<UpgradeType> = Vec::with_capacity(configs.len());
    for (i, config) in configs.iter().enumerate() {
        let at = at.field(format!("upgrade_configs[{i}]"));
        if !config.filters.is_empty() {
            return Err(at.field("filters").error(
                "an upgrade's own filter chain is not supported: leave filters empty to use the connection manager's",
            ));
        }
        let upgrade = upgrade_type(
            &config.upgrade_type,
            config.enabled.as_ref().is_none_or(|v| v.value),
            &types,
            &at,
        )?;
        types.push(upgrade);
    }
    Ok(UpgradeConfigs::new(types))
}

/// A route action's `upgrade_configs`.
pub(super) fn route_upgrades(
    configs: &[PbRouteUpgrade],
    at: &At<'_>,
) -> Result<Vec<UpgradeType>, Error> {
    let mut types: Vec<UpgradeType> = Vec::with_capacity(configs.len());
    for (i, config) in configs.iter().enumerate() {
        let at = at.field(format!("upgrade_configs[{i}]"));
        if config.connect_config.is_some() {
            return Err(at
                .field("connect_config")
                .error("CONNECT payload forwarding is not supported"));
        }
        let upgrade = upgrade_type(
            &config.upgrade_type,
            config.enabled.as_ref().is_none_or(|v| v.value),
            &types,
            &at,
        )?;
        types.push(upgrade);
    }
    Ok(types)
}

fn upgrade_type(
    name: &str,
    enabled: bool,
    seen: &[UpgradeType],
    at: &At<'_>,
) -> Result<UpgradeType, Error> {
    let at = at.field("upgrade_type");
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(at.error(format!("{name:?} is not an upgrade token")));
    }
    if name.eq_ignore_ascii_case("connect") {
        return Err(at.error("CONNECT is not supported"));
    }
    if seen.iter().any(|t| t.name.eq_ignore_ascii_case(name)) {
        return Err(at.error(format!("upgrade type {name:?} is configured twice")));
    }
    Ok(UpgradeType::new(name, enabled))
}
