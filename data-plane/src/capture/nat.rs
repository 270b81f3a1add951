//! The nat table (IPv4): outbound TCP redirected to the agent's outbound
//! listener, DNS (TCP and UDP 53) to its DNS proxy, in istio-iptables'
//! order: excluded ports, the proxy's own uid/gid, DNS, loopback, excluded
//! ranges, then the included ranges.

use shared::ports::DNS_PROXY;

use super::plan::{
    CapturePlan, ChainRules, DNS_CHAIN, Family, Jump, OUTPUT_CHAIN, REDIRECT_CHAIN, TableRules,
    rule,
};
use super::ranges::IncludeRanges;

pub fn nat_rules(plan: &CapturePlan) -> TableRules {
    let mut output = Vec::new();
    for port in &plan.exclude_ports {
        for protocol in ["tcp", "udp"] {
            output.push(format!(
                "-p {protocol} -m {protocol} --dport {port} -j RETURN"
            ));
        }
    }
    for owner in plan.owner_matches() {
        output.push(format!("{owner} -j RETURN"));
    }
    let mut chains = Vec::new();
    if plan.capture_dns {
        output.push(rule(&["-j", DNS_CHAIN]));
        chains.push(ChainRules {
            name: DNS_CHAIN,
            rules: ["tcp", "udp"]
                .map(|protocol| {
                    format!(
                        "-p {protocol} -m {protocol} --dport 53 -j REDIRECT --to-ports {DNS_PROXY}"
                    )
                })
                .to_vec(),
        });
    }
    output.push(rule(&["-d", "127.0.0.1/32", "-j", "RETURN"]));
    for range in plan.exclude.iter().filter(|r| Family::V4.holds(r)) {
        output.push(format!("-d {range} -j RETURN"));
    }
    match &plan.include {
        IncludeRanges::All => output.push(rule(&["-j", REDIRECT_CHAIN])),
        IncludeRanges::Only(ranges) => {
            for range in ranges.iter().filter(|r| Family::V4.holds(r)) {
                output.push(format!("-d {range} -j {REDIRECT_CHAIN}"));
            }
        }
    }
    chains.push(ChainRules {
        name: OUTPUT_CHAIN,
        rules: output,
    });
    chains.push(ChainRules {
        name: REDIRECT_CHAIN,
        rules: vec![format!("-p tcp -j REDIRECT --to-ports {}", plan.proxy_port)],
    });
    TableRules {
        table: "nat",
        chains,
        jumps: vec![Jump {
            from: "OUTPUT",
            rule: rule(&["-j", OUTPUT_CHAIN]),
        }],
    }
}
