//! The filter table: what the app may send at all. Always: QUIC (UDP 443)
//! is refused so clients fall back to TCP, which is captured; the app's
//! IPv6 is refused but for loopback, replies, neighbour discovery and
//! excluded ranges (the agent listens on IPv4 only, so IPv6 cannot be
//! redirected to it). Under lockdown: only the proxy's uid/gid, loopback
//! (and 127.0.0.1, where nat sent what it captured), replies of established
//! connections and the egress gateway's addresses may leave.

use super::plan::{CapturePlan, ChainRules, EGRESS_CHAIN, Family, Jump, TableRules, rule};

/// ICMPv6 neighbour discovery (RFC 4861: router solicitation and
/// advertisement, neighbour solicitation and advertisement), without which
/// IPv6 on the link stops working for the proxy and for loopback replies.
const NEIGHBOUR_DISCOVERY: [u8; 4] = [133, 134, 135, 136];

pub fn filter_rules(plan: &CapturePlan, family: Family) -> TableRules {
    let mut rules: Vec<String> = plan
        .owner_matches()
        .into_iter()
        .map(|owner| format!("{owner} -j RETURN"))
        .collect();
    rules.push(rule(&["-o", "lo", "-j", "RETURN"]));
    if family == Family::V4 {
        // What nat redirected to the agent keeps the route (and the output
        // interface) of its original destination: it leaves by
        // 127.0.0.1, which REDIRECT gave it, and only by loopback.
        rules.push(rule(&["-d", "127.0.0.1/32", "-j", "RETURN"]));
    }
    rules.push(rule(&[
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED",
        "-j",
        "RETURN",
    ]));
    if family == Family::V6 {
        for icmp_type in NEIGHBOUR_DISCOVERY {
            rules.push(format!(
                "-p ipv6-icmp -m icmp6 --icmpv6-type {icmp_type} -j RETURN"
            ));
        }
    }
    rules.push(format!("-p udp -m udp --dport 443 {}", family.reject()));
    if plan.lockdown {
        for range in plan.gateway_addresses.iter().filter(|r| family.holds(r)) {
            rules.push(format!("-d {range} -j RETURN"));
        }
    } else if family == Family::V6 {
        for range in plan.exclude.iter().filter(|r| family.holds(r)) {
            rules.push(format!("-d {range} -j RETURN"));
        }
    }
    if plan.lockdown || family == Family::V6 {
        rules.push(family.reject().to_string());
    }
    TableRules {
        table: "filter",
        chains: vec![ChainRules {
            name: EGRESS_CHAIN,
            rules,
        }],
        jumps: vec![Jump {
            from: "OUTPUT",
            rule: rule(&["-j", EGRESS_CHAIN]),
        }],
    }
}
