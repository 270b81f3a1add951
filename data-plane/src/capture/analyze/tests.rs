//! The analysis on saved-rule fixtures (written by a real iptables-save
//! after `init`): clean under lockdown, each gap named without it, and the
//! readers of /proc files and of the agent's config dump.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;

const LOCKDOWN_V4: &str = include_str!("../fixtures/lockdown.v4");
const LOCKDOWN_V6: &str = include_str!("../fixtures/lockdown.v6");
const DEFAULT_V4: &str = include_str!("../fixtures/default.v4");
const DEFAULT_V6: &str = include_str!("../fixtures/default.v6");
const AGENT_EXE: &str = "/usr/local/bin/data-plane";
const ENVOY_EXE: &str = "/usr/local/bin/envoy";

/// The agent running as uid 1337 with its outbound and DNS listeners, an
/// app running as root, one ServiceEntry address, and a global IPv6
/// address.
fn facts(v4: &str, v6: &str) -> Facts {
    Facts {
        saved_v4: SavedRules::parse(v4),
        saved_v6: SavedRules::parse(v6),
        global_ipv6: vec!["eth0 2001:db8::2".to_string()],
        listening: Some(BTreeSet::from([
            (Protocol::Tcp, Family::V4, 15001),
            (Protocol::Tcp, Family::V4, 15053),
            (Protocol::Udp, Family::V4, 15053),
        ])),
        resolvers: vec!["10.0.0.2".parse().unwrap(), "127.0.0.53".parse().unwrap()],
        service_addresses: Ok(vec!["240.240.0.1/32".parse().unwrap()]),
        processes: vec![
            Process {
                pid: 10,
                name: "data-plane".to_string(),
                uid: 1337,
                gid: 1337,
                exe: Some(PathBuf::from(AGENT_EXE)),
            },
            Process {
                pid: 11,
                name: "curl".to_string(),
                uid: 0,
                gid: 0,
                exe: Some(PathBuf::from("/usr/bin/curl")),
            },
        ],
        proxy_executables: vec![PathBuf::from(AGENT_EXE), PathBuf::from(ENVOY_EXE)],
    }
}

fn has(report: &Report, needle: &str) -> bool {
    report.findings.iter().any(|f| f.contains(needle))
}

#[test]
fn lockdown_leaves_no_path_out() {
    let report = analyze(&facts(LOCKDOWN_V4, LOCKDOWN_V6));
    assert_eq!(report.findings, Vec::<String>::new());
    assert_eq!(report.notes, Vec::<String>::new());
}

#[test]
fn without_lockdown_each_gap_is_named() {
    let report = analyze(&facts(DEFAULT_V4, DEFAULT_V6));
    assert!(
        has(
            &report,
            "IPv4 DNS over UDP from the app to 10.0.0.2:53 leaves"
        ),
        "DNS to the configured resolver is not captured: {report:?}"
    );
    assert!(has(
        &report,
        "IPv4 DNS over UDP from the app to 203.0.113.53:53 leaves"
    ));
    assert!(
        !has(&report, "127.0.0.53"),
        "a loopback resolver is not a way out"
    );
    assert!(has(
        &report,
        "IPv4 UDP from the app to 203.0.113.10:123 leaves"
    ));
    assert!(has(
        &report,
        "203.0.113.10:15012 leaves without the proxy (nat: -A ISTIO_OUTPUT -p tcp -m tcp --dport 15012 -j RETURN)"
    ));
    assert!(has(
        &report,
        "TCP to a ServiceEntry address, from the app to 240.240.0.1:443 leaves without the proxy (nat: -A ISTIO_OUTPUT -d 240.240.0.0/16 -j RETURN)"
    ));
    assert!(!has(&report, "QUIC"), "init refuses UDP 443: {report:?}");
    assert!(
        !has(&report, "IPv6"),
        "init refuses the app's IPv6: {report:?}"
    );
    assert!(!has(&report, "203.0.113.10:443"), "TCP is captured");
}

#[test]
fn no_rules_at_all_leave_every_path_open() {
    let report = analyze(&facts("", ""));
    for path in [
        "IPv4 TCP from the app to 203.0.113.10:443 leaves without the proxy (no nat rule redirects it)",
        "IPv4 UDP 443 (QUIC) from the app to 203.0.113.10:443 leaves",
        "IPv6 TCP from the app to [2001:db8::10]:443 leaves without the proxy (no nat rule redirects it) [IPv6 addresses: eth0 2001:db8::2]",
        "IPv6 DNS over UDP from the app to [2001:db8::53]:53 leaves",
    ] {
        assert!(has(&report, path), "{path}: {report:?}");
    }
}

#[test]
fn ipv6_is_probed_only_where_an_interface_has_a_global_address() {
    let mut facts = facts("", "");
    facts.global_ipv6.clear();
    let report = analyze(&facts);
    assert!(!has(&report, "IPv6"));
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("IPv6 paths not probed"))
    );
}

#[test]
fn a_missing_jump_from_output_is_a_path_out() {
    let without_jump = LOCKDOWN_V4
        .replace("-A OUTPUT -j ISTIO_OUTPUT\n", "")
        .replace("-A OUTPUT -j ISTIO_EGRESS\n", "");
    let report = analyze(&facts(&without_jump, LOCKDOWN_V6));
    assert!(has(
        &report,
        "IPv4 TCP from the app to 203.0.113.10:443 leaves without the proxy (no nat rule redirects it)"
    ));
}

#[test]
fn a_redirect_to_a_port_nothing_listens_on_is_reported() {
    let mut facts = facts(LOCKDOWN_V4, LOCKDOWN_V6);
    facts.listening = Some(BTreeSet::from([(Protocol::Tcp, Family::V6, 15001)]));
    let report = analyze(&facts);
    assert!(
        !has(&report, "TCP from the app to 203.0.113.10:443"),
        "an IPv6 wildcard socket takes IPv4 too"
    );
    assert!(has(
        &report,
        "IPv4 DNS over UDP from the app to 10.0.0.2:53 is redirected to port 15053, where nothing listens"
    ));
}

#[test]
fn an_exempt_uid_used_by_another_process_is_reported() {
    let mut facts = facts(LOCKDOWN_V4, LOCKDOWN_V6);
    facts.processes.push(Process {
        pid: 12,
        name: "python3".to_string(),
        uid: 1337,
        gid: 1000,
        exe: Some(PathBuf::from("/usr/bin/python3")),
    });
    let report = analyze(&facts);
    assert_eq!(
        report.findings,
        ["process 12 (python3) runs as uid 1337, which the rules let out without the proxy"]
    );
}

#[test]
fn only_the_proxys_executables_may_use_the_exempt_ids_whatever_a_process_is_named() {
    let mut facts = facts(LOCKDOWN_V4, LOCKDOWN_V6);
    let process = |pid, name: &str, exe: Option<&str>| Process {
        pid,
        name: name.to_string(),
        uid: 1337,
        gid: 1337,
        exe: exe.map(PathBuf::from),
    };
    facts.processes.extend([
        process(12, "envoy", Some(ENVOY_EXE)),
        process(13, "envoy", Some("/tmp/envoy")),
        process(14, "data-plane", None),
    ]);
    let report = analyze(&facts);
    assert_eq!(
        report.findings,
        [
            "process 13 (envoy) runs as uid 1337, which the rules let out without the proxy",
            "process 14 (data-plane) runs as uid 1337, which the rules let out without the proxy",
        ]
    );
}

#[test]
fn an_unreachable_agent_is_a_note() {
    let mut facts = facts(LOCKDOWN_V4, LOCKDOWN_V6);
    facts.service_addresses = Err("connection refused".to_string());
    let report = analyze(&facts);
    assert!(report.findings.is_empty());
    assert_eq!(
        report.notes,
        ["ServiceEntry addresses not checked: connection refused"]
    );
}

#[test]
fn conditions_this_reading_cannot_decide_favour_the_bypass() {
    let v4 = "*nat
:OUTPUT ACCEPT [0:0]
-A OUTPUT -s 10.1.0.0/16 -j RETURN
-A OUTPUT -p tcp -j REDIRECT --to-ports 15001
COMMIT
";
    let report = analyze(&facts(v4, LOCKDOWN_V6));
    assert!(has(
        &report,
        "203.0.113.10:443 leaves without the proxy (nat: -A OUTPUT -s 10.1.0.0/16 -j RETURN)"
    ));
}

#[test]
fn proc_files_are_read_as_the_kernel_writes_them() {
    let if_inet6 = "00000000000000000000000000000001 01 80 10 80       lo
fe800000000000000000000000000001 02 40 20 80     eth0
20010db8000000000000000000000002 02 40 00 80     eth0
";
    assert_eq!(parse_if_inet6(if_inet6), ["eth0 2001:db8::2"]);
    let tcp = "  sl  local_address rem_address   st tx_queue rx_queue
   0: 00000000:3A99 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1337
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0
";
    assert_eq!(parse_listening(tcp, Protocol::Tcp), BTreeSet::from([15001]));
    assert_eq!(
        parse_listening(tcp, Protocol::Udp),
        BTreeSet::from([15001, 8080])
    );
    assert_eq!(
        parse_resolv_conf("# comment\nnameserver 10.0.0.2\nnameserver ::1\nsearch x\n"),
        [
            "10.0.0.2".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
}

#[test]
fn service_entry_addresses_come_from_the_agents_listeners() {
    let dump = r#"{"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
         "dynamic_active_clusters": [{"cluster": {"load_assignment": {"endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "93.184.216.34"}}}}]}]}}}]},
        {"@type": "type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
         "dynamic_listeners": [
           {"name": "virtualOutbound", "active_state": {"listener": {"address": {"socket_address": {"address": "0.0.0.0", "port_value": 15001}},
             "filter_chains": [{"filter_chain_match": {"prefix_ranges": [{"address_prefix": "240.240.0.0", "prefix_len": 16}]}}]}}},
           {"name": "240.240.0.1_443", "active_state": {"listener": {"address": {"socket_address": {"address": "240.240.0.1", "port_value": 443}}}}}
         ]}
    ]}"#;
    let printed: Vec<String> = service_addresses(dump)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(printed, ["240.240.0.0/16", "240.240.0.1/32"]);
    assert!(service_addresses("not json").is_err());
}
