//! Traffic-policy parity: Istio's DestinationRule and VirtualService
//! policy gives the same results through our agent as through real Envoy
//! 1.40, on the same control plane with the same YAML: the table below,
//! run by [`integration_tests::policy`], once with the agent as the app's
//! sidecar, then with Envoy, each as in a pod behind istio-init's capture.
//!
//! Each scenario's service has named servers as its endpoints; its probe
//! sends real curl requests and states what a user sees: statuses, the
//! access log's response flags, which server answered, the headers each
//! side saw, Envoy's stats and `/clusters`. Each expected fact is stated
//! from Istio's and Envoy's docs; the agent's facts must equal Envoy's and
//! both the expected ones. Timing facts are lower bounds only. The table is
//! printed (`--nocapture`) and is part of any failure.
//!
//! Needs root (namespaces, iptables): see `netns::require_root`.

mod config;
mod connection_limits;
mod connection_pool;
mod destination_rule;
mod lifecycle;
mod load_balancing;
mod outlier_ejection;
mod retries;
mod retry_conditions;
mod retry_headers;
mod router_headers;
mod timeouts;
mod tls_and_flags;
mod upgrades;
mod virtual_service;
mod vs_filters;
mod vs_matches;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use integration_tests::netns;
use integration_tests::policy::{self, Reply, Scenario, ServerSpec};
use integration_tests::tls::TestCa;

/// The servers each side runs: three endpoints of one service, and one
/// more for mirrors.
const SERVERS: [ServerSpec; 5] = [
    ServerSpec::http("a"),
    ServerSpec::http("b"),
    ServerSpec::http("c"),
    ServerSpec::http("shadow"),
    ServerSpec::https("tls", &[tls_and_flags::TLS_HOST]),
];

/// The table, in order; `POLICY_SCENARIOS=<text>` keeps only the
/// scenarios whose name holds the text.
fn scenarios(ca_cert: &Path, other_ca_cert: &Path) -> Vec<Scenario> {
    let only = std::env::var("POLICY_SCENARIOS").unwrap_or_default();
    destination_rule::scenarios()
        .into_iter()
        .chain(load_balancing::scenarios())
        .chain(outlier_ejection::scenarios())
        .chain(connection_limits::scenarios())
        .chain(connection_pool::scenarios())
        .chain(virtual_service::scenarios())
        .chain(retries::scenarios())
        .chain(retry_conditions::scenarios())
        .chain(retry_headers::scenarios())
        .chain(router_headers::scenarios())
        .chain(timeouts::scenarios())
        .chain(vs_filters::scenarios())
        .chain(vs_matches::scenarios())
        .chain(upgrades::scenarios())
        .chain(tls_and_flags::scenarios(ca_cert, other_ca_cert))
        .chain(lifecycle::scenarios())
        .filter(|scenario| only.split(',').any(|part| scenario.name.contains(part)))
        .collect()
}

/// Each reply's status, joined.
pub fn statuses(replies: &[Reply]) -> String {
    policy::tally(replies.iter().map(Reply::result))
}

#[test]
fn agent_and_envoy_agree_on_traffic_policy() -> Result<()> {
    if !netns::require_root("agent_and_envoy_agree_on_traffic_policy") {
        return Ok(());
    }
    let started = Instant::now();
    let ca = TestCa::new()?;
    let other_ca = TestCa::new()?;
    let scenarios = scenarios(ca.cert_path(), other_ca.cert_path());
    let report = policy::run(&scenarios, &SERVERS, &[], &ca)?;
    println!("{report}");
    println!("runtime: {:.1?}", started.elapsed());
    // A panic, so that every process prints its logs.
    let failures = report.failures();
    assert!(failures.is_empty(), "{}\n\n{report}", failures.join("\n"));
    Ok(())
}
