//! A route configuration's dump written virtual host by virtual host: the
//! encoded `RouteConfiguration` is split on the wire into its virtual
//! hosts and the rest, the rest is converted as a small message, and each
//! virtual host is converted and written on its own, so the JSON of a
//! route configuration of tens of thousands of hosts is never held whole.
//! The output is byte for byte the whole conversion's.

use std::io::Write;

use prost::Message;
use prost::encoding::{WireType, decode_key, decode_varint};
use proto::pb::envoy::admin::v3::routes_config_dump::DynamicRouteConfig;
use proto::wkt::Any;

use super::{ACKED, DumpError, ELEMENT_INDENT, Indented, write_json};

const DYNAMIC_ROUTE_CONFIG: &str = "envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig";
const VIRTUAL_HOST: &str = "envoy.config.route.v3.VirtualHost";
/// `RouteConfiguration.virtual_hosts`.
const VIRTUAL_HOSTS_FIELD: u32 = 2;
/// Where a route configuration's fields sit in the element.
const FIELD_INDENT: &str = "    ";
/// Where a virtual host sits in the element: in `virtual_hosts`.
const HOST_INDENT: &[u8] = b"      ";
/// Where a virtual host's lines sit in the dump.
const HOST_LINE_INDENT: &[u8] = b"              ";

/// An encoded `RouteConfiguration` cut on the wire: its virtual hosts'
/// encodings, and every other field as encoded.
struct Split<'a> {
    hosts: Vec<&'a [u8]>,
    rest: Vec<u8>,
}

/// Cuts `bytes` into its virtual hosts and the rest; `None` if it is not
/// a well-formed message.
fn split(mut bytes: &[u8]) -> Option<Split<'_>> {
    let mut split = Split {
        hosts: Vec::new(),
        rest: Vec::new(),
    };
    while !bytes.is_empty() {
        let start = bytes;
        let (field, wire_type) = decode_key(&mut bytes).ok()?;
        match wire_type {
            WireType::Varint => {
                decode_varint(&mut bytes).ok()?;
            }
            WireType::SixtyFourBit => bytes = bytes.get(8..)?,
            WireType::ThirtyTwoBit => bytes = bytes.get(4..)?,
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
                let value = bytes.get(..len)?;
                bytes = &bytes[len..];
                if field == VIRTUAL_HOSTS_FIELD {
                    split.hosts.push(value);
                    continue;
                }
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        }
        let consumed = start.len() - bytes.len();
        split.rest.extend_from_slice(&start[..consumed]);
    }
    Some(split)
}

/// Writes the `DynamicRouteConfig` of `route_config` to `out` at an
/// element's depth (after its first line), as the whole conversion would.
pub(super) fn write(route_config: Any, out: &mut impl Write) -> Result<(), DumpError> {
    let whole = |route_config: Any| {
        DynamicRouteConfig {
            route_config: Some(route_config),
            client_status: ACKED,
            ..Default::default()
        }
        .encode_to_vec()
    };
    let Some(split) = split(&route_config.value).filter(|s| !s.hosts.is_empty()) else {
        let mut indented = Indented {
            out,
            indent: ELEMENT_INDENT,
        };
        return write_json(DYNAMIC_ROUTE_CONFIG, &whole(route_config), &mut indented);
    };
    let rest = Any {
        type_url: route_config.type_url,
        value: split.rest,
    };
    let mut head = Vec::new();
    write_json(DYNAMIC_ROUTE_CONFIG, &whole(rest), &mut head)?;
    let head = String::from_utf8(head).map_err(|_| DumpError::Cancelled)?;
    // The virtual hosts go after the configuration's name (field 1), or
    // after its `@type` when it has none.
    let lines: Vec<&str> = head.split('\n').collect();
    let name = format!("{FIELD_INDENT}\"name\": ");
    let at_type = format!("{FIELD_INDENT}\"@type\": ");
    let anchor = lines
        .iter()
        .position(|line| line.starts_with(&name))
        .or_else(|| lines.iter().position(|line| line.starts_with(&at_type)))
        .ok_or(DumpError::Cancelled)?;
    let io = |_: std::io::Error| DumpError::Cancelled;
    for (index, line) in lines.iter().enumerate() {
        if index > 0 {
            out.write_all(b"\n").map_err(io)?;
            out.write_all(ELEMENT_INDENT).map_err(io)?;
        }
        if index != anchor {
            out.write_all(line.as_bytes()).map_err(io)?;
            continue;
        }
        let last = !line.ends_with(',');
        out.write_all(line.trim_end_matches(',').as_bytes())
            .map_err(io)?;
        out.write_all(b",\n").map_err(io)?;
        out.write_all(ELEMENT_INDENT).map_err(io)?;
        write!(out, "{FIELD_INDENT}\"virtual_hosts\": [").map_err(io)?;
        for (position, host) in split.hosts.iter().enumerate() {
            let separator: &[u8] = if position == 0 { b"\n" } else { b",\n" };
            out.write_all(separator).map_err(io)?;
            out.write_all(ELEMENT_INDENT).map_err(io)?;
            out.write_all(HOST_INDENT).map_err(io)?;
            let mut indented = Indented {
                out: &mut *out,
                indent: HOST_LINE_INDENT,
            };
            write_json(VIRTUAL_HOST, host, &mut indented)?;
        }
        out.write_all(b"\n").map_err(io)?;
        out.write_all(ELEMENT_INDENT).map_err(io)?;
        write!(out, "{FIELD_INDENT}]").map_err(io)?;
        if !last {
            out.write_all(b",").map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::pack;
    use proto::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
    use proto::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
    use proto::wkt::BoolValue;
    use shared::type_url;

    use super::*;

    fn host(index: usize) -> VirtualHost {
        VirtualHost {
            name: format!("host-{index}.example.com:80"),
            domains: vec![format!("host-{index}.example.com"), "x\ny\"z".into()],
            ..Default::default()
        }
    }

    /// The element as the whole conversion writes it.
    fn whole(route_config: &Any) -> String {
        let bytes = DynamicRouteConfig {
            route_config: Some(route_config.clone()),
            client_status: ACKED,
            ..Default::default()
        }
        .encode_to_vec();
        let mut out = Vec::new();
        let mut indented = Indented {
            out: &mut out,
            indent: ELEMENT_INDENT,
        };
        write_json(DYNAMIC_ROUTE_CONFIG, &bytes, &mut indented).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn streamed(route_config: &Any) -> String {
        let mut out = Vec::new();
        write(route_config.clone(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn host_by_host_is_byte_for_byte_the_whole_conversion() {
        let header = HeaderValueOption {
            header: Some(HeaderValue {
                key: "x-a".into(),
                value: "1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cases = [
            RouteConfiguration {
                name: "80".into(),
                virtual_hosts: (0..3).map(host).collect(),
                validate_clusters: Some(BoolValue { value: false }),
                request_headers_to_add: vec![header],
                ..Default::default()
            },
            // Nothing after the hosts.
            RouteConfiguration {
                name: "80".into(),
                virtual_hosts: vec![host(0), VirtualHost::default()],
                ..Default::default()
            },
            // No name: the hosts come after the type.
            RouteConfiguration {
                virtual_hosts: vec![host(1)],
                validate_clusters: Some(BoolValue { value: true }),
                ..Default::default()
            },
            RouteConfiguration {
                virtual_hosts: vec![host(1)],
                ..Default::default()
            },
            // No hosts at all.
            RouteConfiguration {
                name: "empty".into(),
                ..Default::default()
            },
        ];
        for route_config in cases {
            let any = pack(type_url::ROUTE, &route_config);
            assert_eq!(streamed(&any), whole(&any), "{route_config:?}");
        }
    }

    #[test]
    fn a_malformed_configuration_is_an_error_not_a_panic() {
        let any = Any {
            type_url: type_url::ROUTE.into(),
            value: vec![0x12, 0x05, 0x0a],
        };
        let mut out = Vec::new();
        assert!(matches!(write(any, &mut out), Err(DumpError::Json(_))));
    }

    /// The process's peak resident set since the last reset, in KiB.
    fn peak_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn reset_peak() {
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
    }

    /// The peak memory of one dump of a route configuration of 20,000
    /// virtual hosts, whole and host by host (prints both; run with
    /// `--ignored --nocapture`, alone).
    #[test]
    #[ignore]
    fn peak_memory_of_a_twenty_thousand_host_dump() {
        let route_config = RouteConfiguration {
            name: "80".into(),
            virtual_hosts: (0..20_000).map(host).collect(),
            ..Default::default()
        };
        let any = pack(type_url::ROUTE, &route_config);
        drop(route_config);
        let base = peak_kib();
        reset_peak();
        let mut sink = std::io::sink();
        write(any.clone(), &mut sink).unwrap();
        let streamed = peak_kib();
        reset_peak();
        let bytes = DynamicRouteConfig {
            route_config: Some(any),
            client_status: ACKED,
            ..Default::default()
        }
        .encode_to_vec();
        write_json(DYNAMIC_ROUTE_CONFIG, &bytes, &mut sink).unwrap();
        let whole = peak_kib();
        println!("peak RSS KiB: before {base}, whole {whole}, host by host {streamed}");
        assert!(streamed < whole);
    }
}
