//! `data-plane analyze`: every path out of the app's network namespace
//! that bypasses the proxy, found by taking probe packets (TCP, QUIC, DNS,
//! other UDP, IPv6, ServiceEntry addresses, excluded ports) through the
//! saved nat and filter rules, and by looking for processes other than the
//! proxy (known by executable, not by name) that run as a uid or gid the
//! rules exempt. Pure over [`Facts`];
//! `facts.rs` gathers them from the system.

mod evaluate;
mod facts;
mod rule;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

pub use facts::{gather, parse_if_inet6, parse_listening, parse_resolv_conf, service_addresses};
pub use rule::Protocol;

use super::plan::Family;
use super::saved::SavedRules;
use evaluate::{Outcome, probe};
use rule::{Owner, Packet, Rule};

/// A process in this network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Its executable (`/proc/PID/exe`), if readable.
    pub exe: Option<PathBuf>,
}

/// Everything the analysis looks at.
#[derive(Debug, Clone)]
pub struct Facts {
    pub saved_v4: SavedRules,
    pub saved_v6: SavedRules,
    /// Non-link-local, non-loopback IPv6 addresses (`eth0 2001:db8::2`).
    pub global_ipv6: Vec<String>,
    /// Local sockets (listening TCP, bound UDP), if known.
    pub listening: Option<BTreeSet<(Protocol, Family, u16)>>,
    /// The resolvers of /etc/resolv.conf.
    pub resolvers: Vec<IpAddr>,
    /// ServiceEntry addresses from the agent's listeners, or why unknown.
    pub service_addresses: Result<Vec<IpNet>, String>,
    pub processes: Vec<Process>,
    /// The proxy's executables (this `data-plane`, Envoy): the only
    /// processes the uid/gid exemptions are meant for.
    pub proxy_executables: Vec<PathBuf>,
}

/// The findings (each a path out) and notes (what was not checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<String>,
    pub notes: Vec<String>,
}

/// The app's identity in probes: not the proxy's.
const APP_UID: u32 = 65534;
/// Documentation addresses standing for "somewhere outside".
const OUTSIDE_V4: &str = "203.0.113.10";
const OUTSIDE_V6: &str = "2001:db8::10";
const OUTSIDE_RESOLVER_V4: &str = "203.0.113.53";
const OUTSIDE_RESOLVER_V6: &str = "2001:db8::53";

/// What a probe stands for, which decides what its outcome means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Quic,
    Dns,
    OtherUdp,
    ServiceEntry,
}

struct Probe {
    kind: Kind,
    protocol: Protocol,
    destination: IpAddr,
    port: u16,
}

fn family_of(address: &IpAddr) -> Family {
    match address {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

fn outside(family: Family) -> (IpAddr, IpAddr) {
    let parse = |text: &str| text.parse::<IpAddr>().expect("a literal address");
    match family {
        Family::V4 => (parse(OUTSIDE_V4), parse(OUTSIDE_RESOLVER_V4)),
        Family::V6 => (parse(OUTSIDE_V6), parse(OUTSIDE_RESOLVER_V6)),
    }
}

/// Every rule of the nat and filter tables, parsed.
fn all_rules(saved: &SavedRules) -> impl Iterator<Item = Rule> + '_ {
    ["nat", "filter"]
        .into_iter()
        .filter_map(|table| saved.table(table))
        .flat_map(|table| table.chains.values().flatten())
        .map(|text| Rule::parse(text))
}

fn probes(facts: &Facts, family: Family, saved: &SavedRules) -> Vec<Probe> {
    let (host, resolver) = outside(family);
    let probe = |kind, protocol, destination, port| Probe {
        kind,
        protocol,
        destination,
        port,
    };
    let mut probes = vec![
        probe(Kind::Tcp, Protocol::Tcp, host, 80),
        probe(Kind::Tcp, Protocol::Tcp, host, 443),
        probe(Kind::Quic, Protocol::Udp, host, 443),
        probe(Kind::OtherUdp, Protocol::Udp, host, 123),
    ];
    let ports: BTreeSet<u16> = all_rules(saved).flat_map(|rule| rule.ports()).collect();
    for port in ports.into_iter().filter(|p| ![53, 80, 443].contains(p)) {
        probes.push(probe(Kind::Tcp, Protocol::Tcp, host, port));
    }
    let resolvers = facts
        .resolvers
        .iter()
        .copied()
        .filter(|r| !r.is_loopback() && family_of(r) == family);
    for resolver in std::iter::once(resolver).chain(resolvers) {
        probes.push(probe(Kind::Dns, Protocol::Udp, resolver, 53));
        probes.push(probe(Kind::Dns, Protocol::Tcp, resolver, 53));
    }
    if let Ok(addresses) = &facts.service_addresses {
        for net in addresses.iter().filter(|n| family.holds(n)) {
            probes.push(probe(Kind::ServiceEntry, Protocol::Tcp, net.network(), 443));
        }
    }
    probes
}

fn describe(family: Family, probe: &Probe) -> String {
    let version = match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    };
    let what = match probe.kind {
        Kind::Tcp => format!("{version} TCP"),
        Kind::Quic => format!("{version} UDP 443 (QUIC)"),
        Kind::Dns => format!("{version} DNS over {}", probe.protocol.name()),
        Kind::OtherUdp => format!("{version} UDP"),
        Kind::ServiceEntry => format!("{version} TCP to a ServiceEntry address,"),
    };
    let destination = match probe.destination {
        IpAddr::V4(address) => format!("{address}:{}", probe.port),
        IpAddr::V6(address) => format!("[{address}]:{}", probe.port),
    };
    format!("{what} from the app to {destination}")
}

fn hint(kind: Kind) -> &'static str {
    match kind {
        Kind::Dns => "; capture it with init --capture-dns, or refuse it with --lockdown",
        Kind::Quic => "; init refuses UDP 443",
        Kind::OtherUdp => "; only init --lockdown refuses it",
        Kind::Tcp | Kind::ServiceEntry => "",
    }
}

fn listens(facts: &Facts, protocol: Protocol, family: Family, port: u16) -> bool {
    let Some(listening) = &facts.listening else {
        return true;
    };
    // An IPv6 wildcard socket takes IPv4 too, unless it is IPv6-only.
    listening.contains(&(protocol, family, port))
        || (family == Family::V4 && listening.contains(&(protocol, Family::V6, port)))
}

fn probe_findings(facts: &Facts, family: Family, saved: &SavedRules, report: &mut Report) {
    for probe_spec in probes(facts, family, saved) {
        let packet = Packet {
            protocol: probe_spec.protocol,
            destination: probe_spec.destination,
            port: probe_spec.port,
            uid: APP_UID,
            gid: APP_UID,
            loopback_out: false,
        };
        let described = describe(family, &probe_spec);
        let finding = match probe(saved, &packet) {
            Outcome::Refused => continue,
            Outcome::Redirected { port } => {
                if listens(facts, probe_spec.protocol, family, port) {
                    continue;
                }
                format!("{described} is redirected to port {port}, where nothing listens")
            }
            Outcome::Leaves { reason } => format!(
                "{described} leaves without the proxy ({reason}){}",
                hint(probe_spec.kind)
            ),
        };
        if !report.findings.contains(&finding) {
            report.findings.push(finding);
        }
    }
}

fn owner_findings(facts: &Facts, report: &mut Report) {
    let exempt: Vec<Owner> = [&facts.saved_v4, &facts.saved_v6]
        .into_iter()
        .flat_map(all_rules)
        .flat_map(|rule| rule.owner_exemptions())
        .collect();
    let within = |(low, high): (u32, u32), id: u32| low <= id && id <= high;
    for process in &facts.processes {
        if process
            .exe
            .as_ref()
            .is_some_and(|exe| facts.proxy_executables.contains(exe))
        {
            continue;
        }
        let exempted = exempt.iter().find_map(|owner| match *owner {
            Owner::Uid(range) if within(range, process.uid) => Some(format!("uid {}", process.uid)),
            Owner::Gid(range) if within(range, process.gid) => Some(format!("gid {}", process.gid)),
            _ => None,
        });
        if let Some(identity) = exempted {
            report.findings.push(format!(
                "process {} ({}) runs as {identity}, which the rules let out without the proxy",
                process.pid, process.name
            ));
        }
    }
}

/// Every path out that bypasses the proxy.
pub fn analyze(facts: &Facts) -> Report {
    let mut report = Report::default();
    probe_findings(facts, Family::V4, &facts.saved_v4, &mut report);
    if facts.global_ipv6.is_empty() {
        report
            .notes
            .push("no interface has a global IPv6 address: IPv6 paths not probed".to_string());
    } else {
        let before = report.findings.len();
        probe_findings(facts, Family::V6, &facts.saved_v6, &mut report);
        let addresses = facts.global_ipv6.join(", ");
        for finding in &mut report.findings[before..] {
            finding.push_str(&format!(" [IPv6 addresses: {addresses}]"));
        }
    }
    if let Err(why) = &facts.service_addresses {
        report
            .notes
            .push(format!("ServiceEntry addresses not checked: {why}"));
    }
    if facts.listening.is_none() {
        report
            .notes
            .push("listening sockets unknown: redirect targets not checked".to_string());
    }
    owner_findings(facts, &mut report);
    report
}

#[cfg(test)]
mod tests;
