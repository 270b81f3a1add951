//! `data-plane init`: transparent capture, as istio-init sets it up, and
//! `init --cleanup` (also `data-plane cleanup`), which removes it.

use std::path::Path;

use clap::Args;
use data_plane::capture::{self, CapturePlan, Family, FamilyRules};

/// Present only when the kernel has IPv6.
const IPV6_ADDRESSES: &str = "/proc/net/if_inet6";

#[derive(Args)]
pub struct InitArgs {
    /// Outbound ranges to capture: `*` or CIDRs (Istio's includeOutboundIPRanges).
    #[arg(long, default_value = "*")]
    pub include_outbound_ip_ranges: String,
    /// Outbound ranges never captured (Istio's excludeOutboundIPRanges).
    #[arg(long, default_value = "")]
    pub exclude_outbound_ip_ranges: String,
    /// Destination ports never captured (Istio's excludeOutboundPorts;
    /// none by default: the proxy's uid exemption already covers the
    /// agent's own connection to the control plane).
    #[arg(long, value_delimiter = ',')]
    pub exclude_outbound_ports: Vec<u16>,
    /// The uid the agent runs as; its own traffic is not captured.
    #[arg(long, default_value_t = 1337)]
    pub proxy_uid: u32,
    #[arg(long, default_value_t = 1337)]
    pub proxy_gid: u32,
    #[arg(long, default_value_t = shared::ports::OUTBOUND_CAPTURE)]
    pub proxy_port: u16,
    /// Redirect the app's DNS (UDP and TCP port 53) to the agent's DNS
    /// proxy on port 15053 (Istio's DNS capture; run the proxy with
    /// `--dns-capture`).
    #[arg(long)]
    pub capture_dns: bool,
    /// Let nothing leave but the proxy's traffic (its uid/gid), loopback
    /// (which includes what is redirected to the agent), replies of
    /// established connections and `--gateway-addresses`; the rest is
    /// rejected, IPv4 and IPv6. Requires --capture-dns: otherwise the app's
    /// DNS queries to its resolvers are refused too.
    #[arg(long, requires = "capture_dns")]
    pub lockdown: bool,
    /// The egress gateway's addresses (CIDRs), the app's only way out
    /// besides the proxy under `--lockdown`.
    #[arg(long, default_value = "", requires = "lockdown")]
    pub gateway_addresses: String,
    /// Remove every rule and chain init added (and nothing else).
    #[arg(long, conflicts_with_all = ["capture_dns", "lockdown", "gateway_addresses"])]
    pub cleanup: bool,
    /// Print the iptables-restore input that would be applied to the rules
    /// in place, instead of applying it.
    #[arg(long)]
    pub dry_run: bool,
}

impl InitArgs {
    fn plan(&self) -> anyhow::Result<CapturePlan> {
        Ok(CapturePlan {
            proxy_port: self.proxy_port,
            proxy_uid: self.proxy_uid,
            proxy_gid: self.proxy_gid,
            include: capture::parse_include(&self.include_outbound_ip_ranges)?,
            exclude: capture::parse_ranges(&self.exclude_outbound_ip_ranges)?,
            exclude_ports: self.exclude_outbound_ports.clone(),
            capture_dns: self.capture_dns,
            lockdown: self.lockdown,
            gateway_addresses: capture::parse_ranges(&self.gateway_addresses)?,
        })
    }
}

pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let wanted = if args.cleanup {
        Family::BOTH.map(FamilyRules::none)
    } else {
        let plan = args.plan()?;
        Family::BOTH.map(|family| plan.rules(family))
    };
    reconcile(&wanted, args.dry_run)
}

/// `data-plane cleanup`: `init --cleanup`.
pub fn cleanup() -> anyhow::Result<()> {
    reconcile(&Family::BOTH.map(FamilyRules::none), false)
}

fn reconcile(wanted: &[FamilyRules], dry_run: bool) -> anyhow::Result<()> {
    for rules in wanted {
        let family = rules.family;
        if family == Family::V6 && !Path::new(IPV6_ADDRESSES).exists() {
            tracing::info!("IPv6 is disabled in this kernel: no ip6tables rules needed");
            continue;
        }
        if dry_run {
            let saved = capture::read_saved(family)?;
            match capture::restore_input(&saved, rules) {
                Some(input) => print!("# {} --noflush\n{input}", family.restore()),
                None => println!("# {}: nothing to change", family.iptables()),
            }
            continue;
        }
        let iptables = family.iptables();
        match (capture::reconcile(rules)?, rules.tables.is_empty()) {
            (Some(_), false) => tracing::info!(iptables, "capture rules applied"),
            (None, false) => tracing::info!(iptables, "capture rules already in place"),
            (Some(_), true) => tracing::info!(iptables, "capture rules removed"),
            (None, true) => tracing::info!(iptables, "no capture rules to remove"),
        }
    }
    Ok(())
}
