//! `/listeners`, as Envoy's: one `name::address` line per listener, or with
//! `format=json` `{"listener_statuses": [{"name", "local_address":
//! {"socket_address": {"address", "port_value"}}}]}`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::model::RunningConfig;

/// The listeners of `config` by name, with their addresses.
pub fn of(config: &RunningConfig) -> Vec<(&str, SocketAddr)> {
    let mut listeners: Vec<_> = config
        .listeners
        .values()
        .map(|listener| (&*listener.name, listener.address))
        .collect();
    listeners.sort_unstable();
    listeners
}

pub fn text(listeners: &[(&str, SocketAddr)]) -> String {
    let mut out = String::new();
    for (name, address) in listeners {
        let _ = writeln!(out, "{name}::{address}");
    }
    out
}

pub fn json(listeners: &[(&str, SocketAddr)]) -> Value {
    let statuses: Vec<Value> = listeners
        .iter()
        .map(|(name, address)| {
            json!({
                "name": name,
                "local_address": { "socket_address": {
                    "address": address.ip().to_string(),
                    "port_value": address.port(),
                }},
            })
        })
        .collect();
    json!({ "listener_statuses": statuses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_have_envoys_shape() {
        let listeners = [
            ("virtualOutbound", "0.0.0.0:15001".parse().unwrap()),
            ("0.0.0.0_80", "0.0.0.0:80".parse().unwrap()),
        ];
        assert_eq!(
            text(&listeners),
            "virtualOutbound::0.0.0.0:15001\n0.0.0.0_80::0.0.0.0:80\n"
        );
        assert_eq!(
            json(&listeners[..1]),
            json!({"listener_statuses": [{
                "name": "virtualOutbound",
                "local_address": {"socket_address": {"address": "0.0.0.0", "port_value": 15001}}
            }]})
        );
    }
}
