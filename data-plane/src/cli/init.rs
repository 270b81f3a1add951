//! `data-plane init`: transparent capture, as istio-init sets it up.

use clap::Args;
use data_plane::capture::{self, CapturePlan};

#[derive(Args)]
pub struct InitArgs {
    /// Outbound ranges to capture: `*` or CIDRs (Istio's includeOutboundIPRanges).
    #[arg(long, default_value = "*")]
    pub include_outbound_ip_ranges: String,
    /// Outbound ranges never captured (Istio's excludeOutboundIPRanges).
    #[arg(long, default_value = "")]
    pub exclude_outbound_ip_ranges: String,
    /// Destination ports never captured (the control plane's xDS ports,
    /// TLS and plaintext).
    #[arg(long, value_delimiter = ',', default_value = "15012,15010")]
    pub exclude_outbound_ports: Vec<u16>,
    /// The uid the agent runs as; its own traffic is not captured.
    #[arg(long, default_value_t = 1337)]
    pub proxy_uid: u32,
    #[arg(long, default_value_t = 1337)]
    pub proxy_gid: u32,
    #[arg(long, default_value_t = shared::ports::OUTBOUND_CAPTURE)]
    pub proxy_port: u16,
    /// Print the iptables commands instead of running them.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let plan = CapturePlan {
        proxy_port: args.proxy_port,
        proxy_uid: args.proxy_uid,
        proxy_gid: args.proxy_gid,
        include: capture::parse_ranges(&args.include_outbound_ip_ranges)?,
        exclude: capture::parse_ranges(&args.exclude_outbound_ip_ranges)?,
        exclude_ports: args.exclude_outbound_ports.clone(),
    };
    let rules = plan.rules();
    if args.dry_run {
        for rule in &rules {
            println!("iptables -t nat {}", rule.join(" "));
        }
        return Ok(());
    }
    capture::apply(&rules)?;
    Ok(())
}
