//! A probe packet through the OUTPUT path as the kernel takes it: nat
//! OUTPUT (which may redirect it to a local port), then filter OUTPUT
//! (which may refuse it). Conditions this reading cannot decide are taken
//! in the bypass's favour: a RETURN or ACCEPT is assumed to match, a
//! REDIRECT, REJECT or DROP is not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::rule::{Matched, Packet, Rule};
use crate::capture::saved::{SavedRules, SavedTable};

/// Where a probe ends up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Redirected to a local port and let through.
    Redirected { port: u16 },
    /// Rejected or dropped.
    Refused,
    /// Out of the namespace without the proxy; `reason` names the rule
    /// that let it skip the redirect, if one did.
    Leaves { reason: String },
}

/// What one chain decided.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Back to the calling chain (RETURN, or the end of a user chain).
    Return,
    Accept,
    Refuse,
    Redirect(u16),
    /// DNAT elsewhere: treated as leaving.
    Translate,
}

/// Deeper jumps than this are a loop.
const MAX_DEPTH: usize = 32;

struct Walk<'a> {
    table: &'a SavedTable,
    /// The last RETURN or ACCEPT that matched, as `-A CHAIN rule`.
    exempted_by: Option<String>,
}

impl Walk<'_> {
    fn chain(&mut self, name: &str, packet: &Packet, depth: usize) -> Verdict {
        let Some(rules) = self.table.chains.get(name) else {
            return Verdict::Return;
        };
        for text in rules {
            let rule = Rule::parse(text);
            let Some(target) = rule.target.as_deref() else {
                continue;
            };
            let matched = match rule.matches(packet) {
                Matched::Yes => true,
                Matched::No => false,
                Matched::Unknown => !matches!(target, "REDIRECT" | "REJECT" | "DROP" | "DNAT"),
            };
            if !matched {
                continue;
            }
            let verdict = match target {
                "RETURN" | "ACCEPT" => {
                    self.exempted_by = Some(format!("-A {name} {text}"));
                    if target == "RETURN" {
                        return Verdict::Return;
                    }
                    Verdict::Accept
                }
                "DROP" | "REJECT" => Verdict::Refuse,
                "REDIRECT" => match rule.redirect_port() {
                    Some(port) => Verdict::Redirect(port),
                    None => continue,
                },
                "DNAT" => Verdict::Translate,
                chain if self.table.chains.contains_key(chain) && depth < MAX_DEPTH => {
                    match self.chain(chain, packet, depth + 1) {
                        Verdict::Return if rule.goto => return Verdict::Return,
                        Verdict::Return => continue,
                        verdict => verdict,
                    }
                }
                _ => continue,
            };
            return verdict;
        }
        match self.table.policies.get(name).map(String::as_str) {
            Some("DROP") => Verdict::Refuse,
            Some(_) => Verdict::Accept,
            None => Verdict::Return,
        }
    }
}

/// One table's OUTPUT verdict (a missing table accepts) and the rule that
/// exempted the packet, if any.
fn output(saved: &SavedRules, table: &str, packet: &Packet) -> (Verdict, Option<String>) {
    let Some(table) = saved.table(table) else {
        return (Verdict::Accept, None);
    };
    let mut walk = Walk {
        table,
        exempted_by: None,
    };
    let verdict = match walk.chain("OUTPUT", packet, 0) {
        Verdict::Return => Verdict::Accept,
        verdict => verdict,
    };
    (verdict, walk.exempted_by)
}

/// Takes `packet` through nat then filter OUTPUT of `saved`.
pub fn probe(saved: &SavedRules, packet: &Packet) -> Outcome {
    let (nat, exempted_by) = output(saved, "nat", packet);
    let mut after_nat = *packet;
    let redirected = match nat {
        Verdict::Redirect(port) => {
            after_nat.destination = match packet.destination {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            after_nat.port = port;
            after_nat.loopback_out = true;
            Some(port)
        }
        _ => None,
    };
    match (output(saved, "filter", &after_nat).0, redirected) {
        (Verdict::Refuse, _) => Outcome::Refused,
        (_, Some(port)) => Outcome::Redirected { port },
        _ => Outcome::Leaves {
            reason: match (nat, exempted_by) {
                (Verdict::Translate, _) => "nat DNAT sends it elsewhere".to_string(),
                (_, Some(rule)) => format!("nat: {rule}"),
                (_, None) => "no nat rule redirects it".to_string(),
            },
        },
    }
}
