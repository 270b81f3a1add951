//! Filter chain selection as Envoy does it: destination port, then
//! destination IP (longest prefix), then server name, then the default.

use super::*;
use crate::model::route::ClusterTarget;

fn chain(name: &str, port: Option<u16>, prefixes: &[&str], names: &[&str]) -> FilterChain {
    FilterChain {
        name: name.into(),
        destination_port: port,
        destination_prefixes: prefixes.iter().map(|p| cidr(p)).collect(),
        server_names: names.iter().map(|s| s.to_string()).collect(),
        tls: None,
        action: ChainAction::Tcp(TcpProxy {
            stat_prefix: name.into(),
            target: ClusterTarget::Cluster(name.into()),
            file_access_logs: Arc::new([]),
            grpc_access_log: None,
            idle_timeout: None,
            max_downstream_connection_duration: None,
            hash_source_ip: false,
        }),
        egress_policy: None,
    }
}

fn cidr(written: &str) -> CidrRange {
    let (prefix, len) = written.split_once('/').expect("a CIDR");
    CidrRange {
        prefix: prefix.parse().expect("an IP"),
        len: len.parse().expect("a length"),
    }
}

fn listener(chains: Vec<FilterChain>, default: Option<FilterChain>) -> Listener {
    Listener {
        name: "l".into(),
        address: "0.0.0.0:443".parse().unwrap(),
        bind_to_port: false,
        use_original_dst: false,
        inspect_tls: true,
        filters_timeout: Default::default(),
        filter_chains: chains,
        default_chain: default,
    }
}

fn selected(l: &Listener, port: u16, ip: Option<&str>, sni: Option<&str>) -> Option<String> {
    l.select_chain(port, ip.map(|ip| ip.parse().expect("an IP")), sni)
        .map(|c| c.name.to_string())
}

#[test]
fn sni_exact_beats_wildcard_and_default_catches_the_rest() {
    let l = listener(
        vec![
            chain("wild", None, &[], &["*.cnn.com"]),
            chain("exact", None, &[], &["edition.cnn.com"]),
        ],
        Some(chain("default", None, &[], &[])),
    );
    assert_eq!(
        selected(&l, 443, None, Some("edition.cnn.com")).as_deref(),
        Some("exact")
    );
    assert_eq!(
        selected(&l, 443, None, Some("www.cnn.com")).as_deref(),
        Some("wild")
    );
    assert_eq!(
        selected(&l, 443, None, Some("cnn.com")).as_deref(),
        Some("default")
    );
    assert_eq!(selected(&l, 443, None, None).as_deref(), Some("default"));
}

#[test]
fn destination_port_chain_wins() {
    let l = listener(
        vec![chain("loop", Some(15001), &[], &[])],
        Some(chain("default", None, &[], &[])),
    );
    assert_eq!(selected(&l, 15001, None, None).as_deref(), Some("loop"));
    assert_eq!(selected(&l, 80, None, None).as_deref(), Some("default"));
}

#[test]
fn no_match_and_no_default_is_none() {
    let l = listener(vec![chain("exact", None, &[], &["a.com"])], None);
    assert_eq!(selected(&l, 443, None, Some("b.com")), None);
}

#[test]
fn the_longest_matching_prefix_wins_and_chains_without_prefixes_take_the_rest() {
    let l = listener(
        vec![
            chain("wide", None, &["10.0.0.0/8"], &[]),
            chain("narrow", None, &["10.1.0.0/16", "192.0.2.0/24"], &[]),
            chain("one", None, &["10.1.2.3/32"], &[]),
            chain("any", None, &[], &[]),
        ],
        Some(chain("default", None, &[], &[])),
    );
    let at = |ip| selected(&l, 3306, Some(ip), None);
    assert_eq!(at("10.1.2.3").as_deref(), Some("one"));
    assert_eq!(at("10.1.9.9").as_deref(), Some("narrow"));
    assert_eq!(at("192.0.2.77").as_deref(), Some("narrow"));
    assert_eq!(at("10.200.0.1").as_deref(), Some("wide"));
    assert_eq!(at("172.16.0.1").as_deref(), Some("any"));
    // Without a known destination address only chains without prefixes match.
    assert_eq!(selected(&l, 3306, None, None).as_deref(), Some("any"));
    // An IPv4-mapped IPv6 destination is its IPv4 address.
    assert_eq!(at("::ffff:10.1.2.3").as_deref(), Some("one"));
}

#[test]
fn the_address_decides_before_the_server_name_without_backtracking() {
    // Envoy narrows to the chains of the most specific prefix first; when
    // none of those takes the SNI, the default chain is used, not a chain
    // of a less specific prefix that would have.
    let l = listener(
        vec![
            chain("net-a", None, &["10.0.0.0/24"], &["a.example"]),
            chain("anywhere-b", None, &[], &["b.example"]),
        ],
        Some(chain("default", None, &[], &[])),
    );
    assert_eq!(
        selected(&l, 443, Some("10.0.0.9"), Some("a.example")).as_deref(),
        Some("net-a")
    );
    assert_eq!(
        selected(&l, 443, Some("10.0.0.9"), Some("b.example")).as_deref(),
        Some("default")
    );
    assert_eq!(
        selected(&l, 443, Some("10.9.0.9"), Some("b.example")).as_deref(),
        Some("anywhere-b")
    );
}

#[test]
fn a_cidr_range_holds_exactly_its_addresses() {
    assert!(cidr("10.0.0.0/8").contains("10.255.255.255".parse().unwrap()));
    assert!(!cidr("10.0.0.0/8").contains("11.0.0.0".parse().unwrap()));
    assert!(cidr("0.0.0.0/0").contains("203.0.113.1".parse().unwrap()));
    assert!(cidr("2001:db8::/32").contains("2001:db8:1::1".parse().unwrap()));
    assert!(!cidr("2001:db8::/32").contains("2001:db9::1".parse().unwrap()));
    assert!(!cidr("10.0.0.0/8").contains("2001:db8::1".parse().unwrap()));
}

#[test]
fn the_listener_bound_to_the_original_destination_wins_over_the_wildcard() {
    let mut config = crate::model::RunningConfig::default();
    for (name, address) in [
        ("0.0.0.0_27017", "0.0.0.0:27017"),
        ("203.0.113.7_27017", "203.0.113.7:27017"),
        ("0.0.0.0_3306", "0.0.0.0:3306"),
    ] {
        let l = Listener {
            name: name.into(),
            address: address.parse().unwrap(),
            ..listener(Vec::new(), None)
        };
        config.listeners.insert(l.name.clone(), Arc::new(l));
    }
    let owner = |dst: &str| {
        config
            .listener_for_original_dst(dst.parse().unwrap())
            .map(|l| l.name.to_string())
    };
    assert_eq!(
        owner("203.0.113.7:27017").as_deref(),
        Some("203.0.113.7_27017")
    );
    assert_eq!(owner("203.0.113.8:27017").as_deref(), Some("0.0.0.0_27017"));
    assert_eq!(owner("203.0.113.7:3306").as_deref(), Some("0.0.0.0_3306"));
    assert_eq!(owner("203.0.113.7:5432"), None);
}
