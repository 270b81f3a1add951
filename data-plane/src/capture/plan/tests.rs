//! The rules a plan means: what is redirected, exempted and refused, per
//! family, in the order istio-iptables writes them.

use super::*;
use crate::capture::ranges::{parse_include, parse_ranges};

fn plan() -> CapturePlan {
    CapturePlan {
        proxy_port: 15001,
        proxy_uid: 1337,
        proxy_gid: 1338,
        include: IncludeRanges::All,
        exclude: Vec::new(),
        exclude_ports: vec![15012],
        capture_dns: false,
        lockdown: false,
        gateway_addresses: Vec::new(),
    }
}

fn chain(plan: &CapturePlan, family: Family, table: &str, chain: &str) -> Vec<String> {
    let rules = plan.rules(family);
    let table = rules.tables.iter().find(|t| t.table == table);
    table
        .and_then(|t| t.chains.iter().find(|c| c.name == chain))
        .map(|c| c.rules.clone())
        .unwrap_or_default()
}

fn position(rules: &[String], rule: &str) -> usize {
    rules
        .iter()
        .position(|r| r == rule)
        .unwrap_or_else(|| panic!("{rule} in {rules:#?}"))
}

#[test]
fn outbound_tcp_is_redirected_but_the_proxys_own_and_loopback() {
    let output = chain(&plan(), Family::V4, "nat", OUTPUT_CHAIN);
    let redirect = position(&output, "-j ISTIO_REDIRECT");
    for exempt in [
        "-p tcp -m tcp --dport 15012 -j RETURN",
        "-m owner --uid-owner 1337 -j RETURN",
        "-m owner --gid-owner 1338 -j RETURN",
        "-d 127.0.0.1/32 -j RETURN",
    ] {
        assert!(position(&output, exempt) < redirect, "{exempt}");
    }
    assert_eq!(
        chain(&plan(), Family::V4, "nat", REDIRECT_CHAIN),
        ["-p tcp -j REDIRECT --to-ports 15001"]
    );
    let jumps = &plan().rules(Family::V4).tables[0].jumps;
    assert_eq!(
        jumps,
        &[Jump {
            from: "OUTPUT",
            rule: "-j ISTIO_OUTPUT".to_string()
        }],
        "every protocol goes through ISTIO_OUTPUT, as istio-iptables does"
    );
}

#[test]
fn only_included_ranges_are_redirected_and_excluded_ones_never() {
    let mut plan = plan();
    plan.include = parse_include("10.0.0.0/24,2001:db8::/32").unwrap();
    plan.exclude = parse_ranges("10.0.0.128/25").unwrap();
    let output = chain(&plan, Family::V4, "nat", OUTPUT_CHAIN);
    assert!(
        position(&output, "-d 10.0.0.128/25 -j RETURN")
            < position(&output, "-d 10.0.0.0/24 -j ISTIO_REDIRECT")
    );
    assert!(
        !output.iter().any(|r| r.contains("2001:db8")),
        "no IPv6 range in iptables"
    );
    assert!(!output.contains(&"-j ISTIO_REDIRECT".to_string()));
}

#[test]
fn dns_goes_to_the_dns_proxy_except_the_proxys_own() {
    let mut plan = plan();
    assert!(chain(&plan, Family::V4, "nat", DNS_CHAIN).is_empty());
    plan.capture_dns = true;
    assert_eq!(
        chain(&plan, Family::V4, "nat", DNS_CHAIN),
        [
            "-p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053",
            "-p udp -m udp --dport 53 -j REDIRECT --to-ports 15053",
        ]
    );
    let output = chain(&plan, Family::V4, "nat", OUTPUT_CHAIN);
    let dns = position(&output, "-j ISTIO_OUTPUT_DNS");
    assert!(position(&output, "-m owner --uid-owner 1337 -j RETURN") < dns);
    assert!(position(&output, "-m owner --gid-owner 1338 -j RETURN") < dns);
    assert!(
        dns < position(&output, "-d 127.0.0.1/32 -j RETURN"),
        "DNS to a loopback resolver is captured too"
    );
}

#[test]
fn quic_is_refused_to_the_app_in_both_families() {
    for (family, reject) in [
        (
            Family::V4,
            "-p udp -m udp --dport 443 -j REJECT --reject-with icmp-port-unreachable",
        ),
        (
            Family::V6,
            "-p udp -m udp --dport 443 -j REJECT --reject-with icmp6-port-unreachable",
        ),
    ] {
        let egress = chain(&plan(), family, "filter", EGRESS_CHAIN);
        assert!(
            position(&egress, "-m owner --uid-owner 1337 -j RETURN") < position(&egress, reject)
        );
    }
    let egress = chain(&plan(), Family::V4, "filter", EGRESS_CHAIN);
    assert!(
        !egress.last().unwrap().starts_with("-j REJECT"),
        "without lockdown the rest of IPv4 may leave (captured by nat)"
    );
}

#[test]
fn the_apps_ipv6_is_refused_but_loopback_replies_neighbour_discovery_and_excluded_ranges() {
    let mut plan = plan();
    plan.exclude = parse_ranges("10.0.0.0/8,2001:db8:1::/48").unwrap();
    let rules = plan.rules(Family::V6);
    assert_eq!(
        rules.tables.len(),
        1,
        "no nat in IPv6: the agent listens on IPv4"
    );
    let egress = chain(&plan, Family::V6, "filter", EGRESS_CHAIN);
    assert_eq!(
        egress,
        [
            "-m owner --uid-owner 1337 -j RETURN",
            "-m owner --gid-owner 1338 -j RETURN",
            "-o lo -j RETURN",
            "-m conntrack --ctstate ESTABLISHED -j RETURN",
            "-p ipv6-icmp -m icmp6 --icmpv6-type 133 -j RETURN",
            "-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j RETURN",
            "-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN",
            "-p ipv6-icmp -m icmp6 --icmpv6-type 136 -j RETURN",
            "-p udp -m udp --dport 443 -j REJECT --reject-with icmp6-port-unreachable",
            "-d 2001:db8:1::/48 -j RETURN",
            "-j REJECT --reject-with icmp6-port-unreachable",
        ]
    );
}

#[test]
fn lockdown_lets_out_only_the_proxy_loopback_replies_and_the_gateways() {
    let mut plan = plan();
    plan.lockdown = true;
    plan.exclude = parse_ranges("10.0.0.0/8,2001:db8:1::/48").unwrap();
    plan.gateway_addresses = parse_ranges("192.0.2.10,2001:db8::10").unwrap();
    for (family, gateway, reject) in [
        (
            Family::V4,
            "-d 192.0.2.10/32 -j RETURN",
            "-j REJECT --reject-with icmp-port-unreachable",
        ),
        (
            Family::V6,
            "-d 2001:db8::10/128 -j RETURN",
            "-j REJECT --reject-with icmp6-port-unreachable",
        ),
    ] {
        let egress = chain(&plan, family, "filter", EGRESS_CHAIN);
        assert_eq!(egress.last().unwrap(), reject, "{family:?}");
        let returns: Vec<&String> = egress
            .iter()
            .filter(|r| r.ends_with("-j RETURN") && !r.starts_with("-p ipv6-icmp"))
            .collect();
        let neighbour_discovery = egress
            .iter()
            .filter(|r| r.starts_with("-p ipv6-icmp -m icmp6 --icmpv6-type"))
            .count();
        let expected = if family == Family::V6 { 4 } else { 0 };
        assert_eq!(
            neighbour_discovery, expected,
            "{family:?}: IPv6 neighbour discovery stays open under lockdown"
        );
        let mut allowed = vec![
            "-m owner --uid-owner 1337 -j RETURN",
            "-m owner --gid-owner 1338 -j RETURN",
            "-o lo -j RETURN",
        ];
        if family == Family::V4 {
            allowed.push("-d 127.0.0.1/32 -j RETURN");
        }
        allowed.extend(["-m conntrack --ctstate ESTABLISHED -j RETURN", gateway]);
        assert_eq!(
            returns, allowed,
            "{family:?}: excluded ranges do not open the lockdown"
        );
    }
}
