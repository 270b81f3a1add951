//! The agent's ports by default (Istio's numbers, on loopback) and its
//! connection limits: each from its flag, else the ProxyConfig, else
//! Istio's default.

use std::net::SocketAddr;

use clap::Parser;

use data_plane::proxy::admission::ConnectionLimits;

use super::{ProxyArgs, Settings};
use crate::cli::proxy_config::ProxyConfig;

#[derive(Parser)]
struct Command {
    #[command(flatten)]
    proxy: ProxyArgs,
}

fn parse(args: &[&str]) -> ProxyArgs {
    let args = [
        "data-plane",
        "sidecar",
        "--plaintext",
        "--xds-addr",
        "127.0.0.1:15010",
    ]
    .iter()
    .chain(args);
    Command::try_parse_from(args).unwrap().proxy
}

#[test]
fn the_scrape_ports_are_istios_on_loopback() {
    let args = parse(&[]);
    let settings = Settings::new(&args, &ProxyConfig::default());
    let addr = |text: &str| text.parse::<SocketAddr>().unwrap();
    assert_eq!(args.metrics_addr, addr("127.0.0.1:15090"));
    assert_eq!(settings.status_addr, addr("127.0.0.1:15020"));
    assert_eq!(settings.admin_addr, addr("127.0.0.1:15000"));
    assert_eq!(args.health_addr, addr("127.0.0.1:15021"));
}

#[test]
fn the_status_port_follows_the_proxy_config_unless_a_flag_says() {
    let config = ProxyConfig::parse("statusPort: 15120").unwrap();
    let args = parse(&[]);
    let settings = Settings::new(&args, &config);
    assert_eq!(settings.status_addr, "127.0.0.1:15120".parse().unwrap());
    let args = parse(&["--status-addr", "10.0.0.1:15220"]);
    let settings = Settings::new(&args, &config);
    assert_eq!(settings.status_addr, "10.0.0.1:15220".parse().unwrap());
}

#[test]
fn connection_limits_come_from_the_flags_else_the_proxy_configs_runtime_values() {
    let limits = |args: &[&str], config: &str| {
        Settings::new(&parse(args), &ProxyConfig::parse(config).unwrap()).limits
    };
    assert_eq!(limits(&[], ""), ConnectionLimits::default());
    let config = "runtimeValues:\n  \"overload.global_downstream_max_connections\": \"100\"\n  \"envoy.resource_limits.listener.0.0.0.0_80.connection_limit\": \"7\"\n";
    let from_config = limits(&[], config);
    assert_eq!(from_config.global, Some(100));
    assert_eq!(from_config.of_listener("0.0.0.0_80"), Some(7));
    assert_eq!(from_config.of_listener("0.0.0.0_443"), None);
    let flags = limits(
        &[
            "--global-downstream-max-connections",
            "50",
            "--listener-connection-limit",
            "3",
        ],
        config,
    );
    assert_eq!(flags.global, Some(50));
    assert_eq!(flags.of_listener("0.0.0.0_80"), Some(3));
    assert_eq!(flags.of_listener("0.0.0.0_443"), Some(3));
    // Istio's "" removes its bootstrap's global limit.
    let unset = "runtimeValues:\n  \"overload.global_downstream_max_connections\": \"\"\n";
    assert_eq!(limits(&[], unset).global, None);
}
