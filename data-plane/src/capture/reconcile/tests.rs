//! Reconciliation on a simulated iptables-restore: idempotence, cleanup as
//! the exact inverse, duplicate and stale jumps and chains, and the rules
//! as a real iptables-save prints them (`fixtures/`).

use super::*;
use crate::capture::plan::{CapturePlan, Family};
use crate::capture::ranges::{IncludeRanges, parse_ranges};

/// What iptables-restore --noflush does with our input: a declared chain
/// is created or flushed, `-D` deletes the first equal rule, `-X` deletes
/// an empty chain no rule jumps to, `-A` appends.
fn restore(saved: &SavedRules, input: &str) -> SavedRules {
    let mut saved = saved.clone();
    let mut table = String::new();
    for line in input.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.to_string();
            continue;
        }
        let chains = &mut saved.tables.entry(table.clone()).or_default().chains;
        if let Some(chain) = line.strip_prefix(':') {
            let chain = chain.split_whitespace().next().unwrap();
            chains.insert(chain.to_string(), Vec::new());
        } else if let Some(rest) = line.strip_prefix("-D ") {
            let (chain, rule) = rest.split_once(' ').unwrap();
            let rules = chains.get_mut(chain).expect("-D in a chain that exists");
            let at = rules
                .iter()
                .position(|r| r == rule)
                .expect("-D of a rule that exists");
            rules.remove(at);
        } else if let Some(chain) = line.strip_prefix("-X ") {
            assert!(chains[chain].is_empty(), "-X of a flushed chain");
            assert!(
                chains.values().flatten().all(|r| target(r) != Some(chain)),
                "-X of a chain nothing jumps to"
            );
            chains.remove(chain);
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let (chain, rule) = rest.split_once(' ').unwrap();
            chains
                .get_mut(chain)
                .expect("-A to a chain that exists")
                .push(rule.to_string());
        }
    }
    saved
}

/// A namespace with someone else's rules in both tables.
const FOREIGN: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A DOCKER -i docker0 -j RETURN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p icmp -j ACCEPT
COMMIT
";

fn plan() -> CapturePlan {
    CapturePlan {
        proxy_port: 15001,
        proxy_uid: 1337,
        proxy_gid: 1337,
        include: IncludeRanges::All,
        exclude: parse_ranges("198.18.0.0/15").unwrap(),
        exclude_ports: vec![15012],
        capture_dns: true,
        lockdown: true,
        gateway_addresses: parse_ranges("192.0.2.10").unwrap(),
    }
}

fn init(saved: &SavedRules, plan: &CapturePlan, family: Family) -> SavedRules {
    match restore_input(saved, &plan.rules(family)) {
        Some(input) => restore(saved, &input),
        None => saved.clone(),
    }
}

#[test]
fn running_init_again_changes_nothing() {
    for family in Family::BOTH {
        let once = init(&SavedRules::parse(FOREIGN), &plan(), family);
        assert_eq!(
            restore_input(&once, &plan().rules(family)),
            None,
            "{family:?}: the rules in place are the wanted ones"
        );
    }
}

#[test]
fn the_wanted_rules_are_spelled_as_iptables_save_prints_them() {
    let mut plan = plan();
    plan.exclude = Vec::new();
    plan.exclude_ports = vec![15012, 15010];
    for (family, saved) in [
        (Family::V4, include_str!("../fixtures/lockdown.v4")),
        (Family::V6, include_str!("../fixtures/lockdown.v6")),
    ] {
        assert_eq!(
            restore_input(&SavedRules::parse(saved), &plan.rules(family)),
            None,
            "{family:?}"
        );
    }
}

#[test]
fn rules_already_in_place_as_iptables_save_prints_them_are_left_alone() {
    let mut plan = plan();
    plan.capture_dns = false;
    plan.lockdown = false;
    plan.exclude = Vec::new();
    let saved = SavedRules::parse(
        "*nat
:OUTPUT ACCEPT [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -p tcp -m tcp --dport 15012 -j RETURN
-A ISTIO_OUTPUT -p udp -m udp --dport 15012 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
*filter
:OUTPUT ACCEPT [0:0]
:ISTIO_EGRESS - [0:0]
-A OUTPUT -j ISTIO_EGRESS
-A ISTIO_EGRESS -m owner --uid-owner 1337 -j RETURN
-A ISTIO_EGRESS -m owner --gid-owner 1337 -j RETURN
-A ISTIO_EGRESS -o lo -j RETURN
-A ISTIO_EGRESS -d 127.0.0.1/32 -j RETURN
-A ISTIO_EGRESS -m conntrack --ctstate ESTABLISHED -j RETURN
-A ISTIO_EGRESS -p udp -m udp --dport 443 -j REJECT --reject-with icmp-port-unreachable
COMMIT
",
    );
    assert_eq!(restore_input(&saved, &plan.rules(Family::V4)), None);
}

#[test]
fn cleanup_removes_exactly_what_init_added() {
    for family in Family::BOTH {
        let before = SavedRules::parse(FOREIGN);
        let after_init = init(&before, &plan(), family);
        assert_ne!(after_init, before);
        let input = restore_input(&after_init, &FamilyRules::none(family)).unwrap();
        assert!(
            !input.contains(":OUTPUT") && !input.contains("-F"),
            "built-in chains are never flushed:\n{input}"
        );
        assert_eq!(restore(&after_init, &input), before, "{family:?}");
        assert_eq!(restore_input(&before, &FamilyRules::none(family)), None);
    }
}

#[test]
fn a_duplicate_jump_is_removed_once() {
    let once = init(&SavedRules::parse(FOREIGN), &plan(), Family::V4);
    let mut twice = once.clone();
    twice
        .tables
        .get_mut("nat")
        .unwrap()
        .chains
        .get_mut("OUTPUT")
        .unwrap()
        .push("-j ISTIO_OUTPUT".into());
    let input = restore_input(&twice, &plan().rules(Family::V4)).unwrap();
    assert_eq!(input, "*nat\n-D OUTPUT -j ISTIO_OUTPUT\nCOMMIT\n");
    assert_eq!(restore(&twice, &input), once);
}

#[test]
fn rules_of_an_older_init_are_replaced_in_one_commit_per_table() {
    let old = SavedRules::parse(
        "*nat
:OUTPUT ACCEPT [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
*filter
:OUTPUT ACCEPT [0:0]
COMMIT
",
    );
    let input = restore_input(&old, &plan().rules(Family::V4)).unwrap();
    assert_eq!(
        input.matches("COMMIT").count(),
        2,
        "nat and filter:\n{input}"
    );
    assert!(input.contains("-D OUTPUT -p tcp -j ISTIO_OUTPUT\n"));
    assert!(
        !input.contains(":ISTIO_REDIRECT"),
        "an unchanged chain is not rewritten"
    );
    let new = restore(&old, &input);
    assert_eq!(restore_input(&new, &plan().rules(Family::V4)), None);
}

#[test]
fn a_chain_no_longer_wanted_is_deleted() {
    let with_dns = init(&SavedRules::parse(FOREIGN), &plan(), Family::V4);
    let mut without = plan();
    without.capture_dns = false;
    let input = restore_input(&with_dns, &without.rules(Family::V4)).unwrap();
    assert!(input.contains("-X ISTIO_OUTPUT_DNS\n"), "{input}");
    let after = restore(&with_dns, &input);
    assert_eq!(after.chain("nat", "ISTIO_OUTPUT_DNS"), None);
}
