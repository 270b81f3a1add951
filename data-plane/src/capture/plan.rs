//! What `data-plane init` asks for ([`CapturePlan`]) and the rules it means
//! per address family ([`FamilyRules`]): our own chains with their rules,
//! and the jumps into them from the built-in chains, each rule spelled as
//! iptables-save prints it so that the rules in place can be compared with
//! the wanted ones.

use ipnet::IpNet;

use super::filter::filter_rules;
use super::nat::nat_rules;
use super::ranges::IncludeRanges;

/// nat: the outbound decision (Istio's chain name).
pub const OUTPUT_CHAIN: &str = "ISTIO_OUTPUT";
/// nat: the redirect to the agent's outbound listener (Istio's name).
pub const REDIRECT_CHAIN: &str = "ISTIO_REDIRECT";
/// nat: DNS to the agent's DNS proxy (Istio's name).
pub const DNS_CHAIN: &str = "ISTIO_OUTPUT_DNS";
/// filter: what the app may send at all (QUIC, IPv6, the lockdown).
pub const EGRESS_CHAIN: &str = "ISTIO_EGRESS";

/// The chains `init` owns, per table: it creates, rewrites and removes
/// these and the jumps into them, and nothing else.
pub const OWNED_CHAINS: [(&str, &[&str]); 2] = [
    ("nat", &[OUTPUT_CHAIN, DNS_CHAIN, REDIRECT_CHAIN]),
    ("filter", &[EGRESS_CHAIN]),
];

/// An address family and its iptables commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn iptables(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    pub fn save(self) -> &'static str {
        match self {
            Family::V4 => "iptables-save",
            Family::V6 => "ip6tables-save",
        }
    }

    pub fn restore(self) -> &'static str {
        match self {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        }
    }

    /// The ICMP reply REJECT sends by default, as iptables-save prints it.
    pub fn reject(self) -> &'static str {
        match self {
            Family::V4 => "-j REJECT --reject-with icmp-port-unreachable",
            Family::V6 => "-j REJECT --reject-with icmp6-port-unreachable",
        }
    }

    pub fn holds(self, net: &IpNet) -> bool {
        matches!(
            (self, net),
            (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_))
        )
    }
}

/// What `data-plane init` sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturePlan {
    pub proxy_port: u16,
    pub proxy_uid: u32,
    pub proxy_gid: u32,
    pub include: IncludeRanges,
    pub exclude: Vec<IpNet>,
    /// Destination ports never redirected (e.g. the control plane's).
    pub exclude_ports: Vec<u16>,
    /// TCP and UDP port 53 to the agent's DNS proxy.
    pub capture_dns: bool,
    /// Only the proxy, loopback, replies and the gateways may leave.
    pub lockdown: bool,
    /// The egress gateway's addresses, open under lockdown.
    pub gateway_addresses: Vec<IpNet>,
}

/// One user chain we own and its rules (without `-A <chain>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRules {
    pub name: &'static str,
    pub rules: Vec<String>,
}

/// A rule in a built-in chain that jumps into one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub from: &'static str,
    pub rule: String,
}

/// One table's part of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRules {
    pub table: &'static str,
    pub chains: Vec<ChainRules>,
    pub jumps: Vec<Jump>,
}

/// Everything one family's tables should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRules {
    pub family: Family,
    pub tables: Vec<TableRules>,
}

impl FamilyRules {
    /// No rules at all: what cleanup reconciles to.
    pub fn none(family: Family) -> Self {
        FamilyRules {
            family,
            tables: Vec::new(),
        }
    }
}

/// Joins a rule's words.
pub(super) fn rule(words: &[&str]) -> String {
    words.join(" ")
}

impl CapturePlan {
    /// The rules for `family`. IPv4 TCP is redirected to the agent; the
    /// agent's listeners are IPv4 only, so the app's IPv6 cannot be
    /// captured and is refused instead (loopback and replies excepted).
    pub fn rules(&self, family: Family) -> FamilyRules {
        let mut tables = Vec::new();
        if family == Family::V4 {
            tables.push(nat_rules(self));
        }
        tables.push(filter_rules(self, family));
        FamilyRules { family, tables }
    }

    /// The uid and gid exemptions, as owner matches.
    pub(super) fn owner_matches(&self) -> [String; 2] {
        [
            format!("-m owner --uid-owner {}", self.proxy_uid),
            format!("-m owner --gid-owner {}", self.proxy_gid),
        ]
    }
}

#[cfg(test)]
mod tests;
