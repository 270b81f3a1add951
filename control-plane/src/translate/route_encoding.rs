//! A route configuration's encoding with its per-filter configs in name
//! order: prost writes a map field in its hash map's order, which differs
//! from one translation to the next, and each resource is versioned by a
//! hash of its bytes, so the same routes must give the same bytes.

use std::collections::BTreeMap;

use prost::Message;
use prost::bytes::BufMut;
use prost::encoding::{self, WireType};
use proto::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use proto::wkt::Any;

/// `RouteConfiguration.virtual_hosts`, `VirtualHost.routes` and
/// `Route.typed_per_filter_config`.
const VIRTUAL_HOSTS: u32 = 2;
const ROUTES: u32 = 3;
const ROUTE_PER_FILTER_CONFIG: u32 = 13;

/// `config` encoded with each route's `typed_per_filter_config` entries
/// sorted by filter name. Fields may come in any order on the wire and
/// repeated ones keep theirs, so this decodes as `config` does.
pub fn encode_route_configuration(config: &RouteConfiguration) -> Vec<u8> {
    let rest = RouteConfiguration {
        virtual_hosts: Vec::new(),
        ..config.clone()
    };
    let mut buf = rest.encode_to_vec();
    for virtual_host in &config.virtual_hosts {
        length_delimited(VIRTUAL_HOSTS, &encode_virtual_host(virtual_host), &mut buf);
    }
    buf
}

fn encode_virtual_host(virtual_host: &VirtualHost) -> Vec<u8> {
    let rest = VirtualHost {
        routes: Vec::new(),
        ..virtual_host.clone()
    };
    let mut buf = rest.encode_to_vec();
    for route in &virtual_host.routes {
        length_delimited(ROUTES, &encode_route(route), &mut buf);
    }
    buf
}

fn encode_route(route: &Route) -> Vec<u8> {
    let rest = Route {
        typed_per_filter_config: Default::default(),
        ..route.clone()
    };
    let mut buf = rest.encode_to_vec();
    let sorted: BTreeMap<&String, &Any> = route.typed_per_filter_config.iter().collect();
    for (name, config) in sorted {
        let mut entry = Vec::new();
        encoding::string::encode(1, name, &mut entry);
        encoding::message::encode(2, config, &mut entry);
        length_delimited(ROUTE_PER_FILTER_CONFIG, &entry, &mut buf);
    }
    buf
}

fn length_delimited(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
    encoding::encode_key(tag, WireType::LengthDelimited, buf);
    encoding::encode_varint(bytes.len() as u64, buf);
    buf.put_slice(bytes);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn any(type_url: &str, value: &[u8]) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: value.to_vec(),
        }
    }

    fn config_with(per_filter: HashMap<String, Any>) -> RouteConfiguration {
        RouteConfiguration {
            name: "80".into(),
            virtual_hosts: vec![VirtualHost {
                name: "a.example:80".into(),
                domains: vec!["a.example".into()],
                routes: vec![
                    Route {
                        name: "first".into(),
                        typed_per_filter_config: per_filter,
                        ..Default::default()
                    },
                    Route {
                        name: "second".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn filters() -> HashMap<String, Any> {
        [
            "envoy.filters.http.fault",
            "envoy.filters.http.cors",
            "a",
            "z",
        ]
        .into_iter()
        .map(|name| (name.to_string(), any(&format!("type/{name}"), b"\x08\x01")))
        .collect()
    }

    #[test]
    fn the_same_routes_give_the_same_bytes_whatever_the_map_order() {
        let first = encode_route_configuration(&config_with(filters()));
        for _ in 0..20 {
            assert_eq!(encode_route_configuration(&config_with(filters())), first);
        }
    }

    #[test]
    fn the_encoding_decodes_to_the_same_configuration() {
        let config = config_with(filters());
        let decoded = RouteConfiguration::decode(encode_route_configuration(&config).as_slice())
            .expect("decodes");
        assert_eq!(decoded, config);
    }
}
