//! The facts `analyze` reads from the system it runs in: the saved rules
//! (iptables-save, ip6tables-save), IPv6 addresses (/proc/net/if_inet6),
//! local sockets (/proc/net/tcp, udp and their IPv6 twins), resolvers
//! (/etc/resolv.conf), the processes of this network namespace (/proc),
//! and the ServiceEntry addresses of the agent's listeners (its admin
//! `/config_dump`). The parsers are pure; `gather` does the reading.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use super::{Facts, Process, Protocol};
use crate::capture::apply::read_saved;
use crate::capture::plan::Family;
use crate::capture::saved::SavedRules;
use crate::capture::{CaptureError, ranges};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Gathers every fact; only a failing iptables-save is an error (without
/// the IPv4 rules there is nothing to analyze). `proxy_executables` are the
/// proxy's binaries, whose processes the uid/gid exemptions are for.
pub fn gather(admin: SocketAddr, proxy_executables: Vec<PathBuf>) -> Result<Facts, CaptureError> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let mut listening = BTreeSet::new();
    let mut known = false;
    for (path, protocol, family) in [
        ("/proc/net/tcp", Protocol::Tcp, Family::V4),
        ("/proc/net/tcp6", Protocol::Tcp, Family::V6),
        ("/proc/net/udp", Protocol::Udp, Family::V4),
        ("/proc/net/udp6", Protocol::Udp, Family::V6),
    ] {
        if let Some(text) = read(path) {
            known = true;
            listening.extend(
                parse_listening(&text, protocol)
                    .into_iter()
                    .map(|port| (protocol, family, port)),
            );
        }
    }
    Ok(Facts {
        saved_v4: read_saved(Family::V4)?,
        saved_v6: read_saved(Family::V6).unwrap_or_else(|_| SavedRules::default()),
        global_ipv6: read("/proc/net/if_inet6")
            .map(|text| parse_if_inet6(&text))
            .unwrap_or_default(),
        listening: known.then_some(listening),
        resolvers: read("/etc/resolv.conf")
            .map(|text| parse_resolv_conf(&text))
            .unwrap_or_default(),
        service_addresses: fetch_config_dump(admin)
            .and_then(|dump| service_addresses(&dump))
            .map_err(|why| format!("http://{admin}/config_dump: {why}")),
        processes: processes(),
        proxy_executables,
    })
}

/// Global and site IPv6 addresses (not link-local, not loopback), as
/// `<interface> <address>`.
pub fn parse_if_inet6(text: &str) -> Vec<String> {
    const HOST: u32 = 0x10;
    const LINK: u32 = 0x20;
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [hex, _, _, scope, _, name] = fields.as_slice() else {
                return None;
            };
            let scope = u32::from_str_radix(scope, 16).ok()?;
            let address = Ipv6Addr::from(u128::from_str_radix(hex, 16).ok()?);
            (scope != HOST && scope != LINK).then(|| format!("{name} {address}"))
        })
        .collect()
}

/// The local ports of listening TCP sockets (state 0A) or bound UDP
/// sockets in a /proc/net/{tcp,udp}[6] table.
pub fn parse_listening(text: &str, protocol: Protocol) -> BTreeSet<u16> {
    const TCP_LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            if protocol == Protocol::Tcp && *state != TCP_LISTEN {
                return None;
            }
            let (_, port) = local.rsplit_once(':')?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// The `nameserver` addresses of a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The addresses the agent's listeners are bound to or match by prefix
/// (ServiceEntry addresses), from a `/config_dump` body: wildcard
/// addresses are skipped.
pub fn service_addresses(dump: &str) -> Result<Vec<IpNet>, String> {
    let dump: Value = serde_json::from_str(dump).map_err(|e| format!("not JSON: {e}"))?;
    let mut found = Vec::new();
    let configs = dump["configs"].as_array().ok_or("no `configs` array")?;
    for listener in configs
        .iter()
        .filter_map(|config| config["dynamic_listeners"].as_array())
        .flatten()
        .map(|dynamic| &dynamic["active_state"]["listener"])
    {
        collect_addresses(listener, &mut found);
    }
    found.retain(|net: &IpNet| !net.addr().is_unspecified() && !net.addr().is_loopback());
    found.sort();
    found.dedup();
    Ok(found)
}

fn collect_addresses(value: &Value, found: &mut Vec<IpNet>) {
    match value {
        Value::Object(map) => {
            if let Some(address) = map
                .get("socket_address")
                .and_then(|socket| socket.get("address"))
                .and_then(Value::as_str)
                && let Ok(net) = ranges::parse_range(address)
            {
                found.push(net);
            }
            if let Some(prefix) = map.get("address_prefix").and_then(Value::as_str) {
                let length = map.get("prefix_len").and_then(Value::as_u64);
                let text = match length {
                    Some(length) => format!("{prefix}/{length}"),
                    None => prefix.to_string(),
                };
                if let Ok(net) = ranges::parse_range(&text) {
                    found.push(net);
                }
            }
            map.values().for_each(|v| collect_addresses(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_addresses(v, found)),
        _ => {}
    }
}

/// `GET /config_dump` from the agent's admin port (plain HTTP/1.0).
fn fetch_config_dump(admin: SocketAddr) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&admin, ADMIN_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(ADMIN_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /config_dump HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or_default().to_string());
    }
    Ok(body.to_string())
}

/// The processes in this network namespace, but this one.
fn processes() -> Vec<Process> {
    let own_namespace = std::fs::read_link("/proc/self/ns/net").ok();
    let own_pid = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own_pid)
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() == own_namespace)
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some(Process {
                pid,
                name: name.trim().to_string(),
                uid: effective_id(&status, "Uid:")?,
                gid: effective_id(&status, "Gid:")?,
                exe: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
            })
        })
        .collect()
}

/// The effective id of a /proc/PID/status `Uid:`/`Gid:` line (the second
/// of real, effective, saved, filesystem).
fn effective_id(status: &str, field: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
