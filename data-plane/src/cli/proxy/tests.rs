//! The agent's ports by default: Istio's numbers, on loopback.

use std::net::SocketAddr;

use clap::Parser;

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
