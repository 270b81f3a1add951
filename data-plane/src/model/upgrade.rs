//! HTTP upgrades a connection manager and its routes allow: the
//! connection manager's `upgrade_configs` and a route's, decided as
//! Envoy's `createUpgradeFilterChain` decides (a route's entry for the type
//! wins; otherwise the connection manager's, enabled by default; a type
//! named by neither is refused).

use std::sync::Arc;

/// One upgrade type with whether it is enabled; the type is kept in ASCII
/// lower case, as Envoy compares it case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeType {
    pub name: String,
    pub enabled: bool,
}

impl UpgradeType {
    pub fn new(name: &str, enabled: bool) -> Self {
        Self {
            name: name.to_ascii_lowercase(),
            enabled,
        }
    }
}

/// The upgrade types of an HTTP connection manager (`upgrade_configs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeConfigs {
    types: Arc<[UpgradeType]>,
    /// Every type is allowed: plain HTTP an explicit proxy sends where a
    /// captured connection would have been proxied as bytes.
    any: bool,
}

impl UpgradeConfigs {
    pub fn new(types: Vec<UpgradeType>) -> Self {
        Self {
            types: types.into(),
            any: false,
        }
    }

    /// Allows every upgrade type (a TCP proxy's bytes carry any).
    pub fn any() -> Self {
        Self {
            types: Arc::default(),
            any: true,
        }
    }

    /// Whether a request asking for `upgrade` (its `Upgrade` header) may
    /// upgrade on a route with `route` upgrade settings.
    pub fn allows(&self, route: &[UpgradeType], upgrade: &str) -> bool {
        let named = |types: &[UpgradeType]| {
            types
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(upgrade))
                .map(|t| t.enabled)
        };
        match named(route) {
            Some(enabled) => enabled,
            None => self.any || named(&self.types).unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn websocket(enabled: bool) -> Vec<UpgradeType> {
        vec![UpgradeType::new("WebSocket", enabled)]
    }

    #[test]
    fn envoy_table_of_connection_manager_and_route_settings() {
        // Envoy's "HTTP upgrades" table: the route's setting, when it has
        // one, overrides the connection manager's.
        let hcm_on = UpgradeConfigs::new(websocket(true));
        let hcm_off = UpgradeConfigs::new(websocket(false));
        assert!(hcm_on.allows(&[], "websocket"));
        assert!(hcm_on.allows(&websocket(true), "websocket"));
        assert!(!hcm_on.allows(&websocket(false), "websocket"));
        assert!(!hcm_off.allows(&[], "websocket"));
        assert!(hcm_off.allows(&websocket(true), "websocket"));
        assert!(!hcm_off.allows(&websocket(false), "websocket"));
    }

    #[test]
    fn types_compare_case_insensitively_and_unknown_ones_are_refused() {
        let hcm = UpgradeConfigs::new(websocket(true));
        assert!(hcm.allows(&[], "WEBSOCKET"));
        assert!(!hcm.allows(&[], "spdy/3"));
        assert!(!UpgradeConfigs::default().allows(&[], "websocket"));
        // A route may enable a type its connection manager does not name.
        assert!(UpgradeConfigs::default().allows(&[UpgradeType::new("spdy/3", true)], "SPDY/3"));
    }

    #[test]
    fn a_proxied_tcp_chain_allows_every_type() {
        assert!(UpgradeConfigs::any().allows(&[], "anything"));
    }
}
