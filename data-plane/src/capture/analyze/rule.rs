//! One saved rule read as conditions and a target, and whether a probe
//! packet matches it: yes, no, or unknown (a match this reading does not
//! model, such as a source address or an unknown module).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::capture::ranges::parse_range;

/// The transport of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// A new connection's first packet as a chain sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub protocol: Protocol,
    pub destination: IpAddr,
    pub port: u16,
    pub uid: u32,
    pub gid: u32,
    /// Routed out of `lo` (a loopback destination, or redirected).
    pub loopback_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    Yes,
    No,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Protocol(String),
    Destination(IpNet),
    OutInterface(String),
    DestinationPorts(Vec<(u16, u16)>),
    UidOwner((u32, u32)),
    GidOwner((u32, u32)),
    State(Vec<String>),
    Unknown,
}

/// A rule's conditions (each possibly negated), target and target options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    conditions: Vec<(bool, Condition)>,
    pub target: Option<String>,
    /// `-g` rather than `-j`.
    pub goto: bool,
    pub target_options: Vec<String>,
}

/// Splits a saved rule into words; double quotes group (`--comment "a b"`).
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `a`, `a:b` (iptables) or `a-b` (owner ranges).
fn range<T: std::str::FromStr + Copy>(text: &str) -> Option<(T, T)> {
    match text.split_once([':', '-']) {
        Some((low, high)) => Some((low.parse().ok()?, high.parse().ok()?)),
        None => text.parse().ok().map(|v| (v, v)),
    }
}

impl Rule {
    pub fn parse(text: &str) -> Rule {
        let words = words(text);
        let mut rule = Rule {
            conditions: Vec::new(),
            target: None,
            goto: false,
            target_options: Vec::new(),
        };
        let mut negated = false;
        let mut at = 0;
        while at < words.len() {
            let word = words[at].as_str();
            let value = words.get(at + 1).map(String::as_str).unwrap_or("");
            at += 2;
            let condition = match word {
                "!" => {
                    negated = true;
                    at -= 1;
                    continue;
                }
                "-j" | "-g" => {
                    rule.target = Some(value.to_string());
                    rule.goto = word == "-g";
                    rule.target_options = words[at.min(words.len())..].to_vec();
                    break;
                }
                "-m" => continue,
                "-p" | "--protocol" => Condition::Protocol(value.to_ascii_lowercase()),
                "-d" | "--destination" => parse_range(value)
                    .map(Condition::Destination)
                    .unwrap_or(Condition::Unknown),
                "-o" | "--out-interface" => Condition::OutInterface(value.to_string()),
                "--dport" | "--dports" | "--destination-port" | "--destination-ports" => value
                    .split(',')
                    .map(range::<u16>)
                    .collect::<Option<Vec<_>>>()
                    .map(Condition::DestinationPorts)
                    .unwrap_or(Condition::Unknown),
                "--uid-owner" => range(value).map_or(Condition::Unknown, Condition::UidOwner),
                "--gid-owner" => range(value).map_or(Condition::Unknown, Condition::GidOwner),
                "--ctstate" | "--state" => {
                    Condition::State(value.split(',').map(str::to_string).collect())
                }
                "-s" | "--source" if value == "0.0.0.0/0" || value == "::/0" => {
                    negated = false;
                    continue;
                }
                _ => {
                    // An option this reading does not model: skip its values.
                    at -= 1;
                    while words
                        .get(at)
                        .is_some_and(|w| !w.starts_with('-') && w != "!")
                    {
                        at += 1;
                    }
                    Condition::Unknown
                }
            };
            rule.conditions.push((negated, condition));
            negated = false;
        }
        rule
    }

    /// Whether `packet` matches every condition.
    pub fn matches(&self, packet: &Packet) -> Matched {
        let mut result = Matched::Yes;
        for (negated, condition) in &self.conditions {
            let one = match condition {
                Condition::Unknown => Matched::Unknown,
                Condition::OutInterface(name) if !packet.loopback_out && name != "lo" => {
                    Matched::Unknown
                }
                condition => {
                    if condition_holds(condition, packet) != *negated {
                        Matched::Yes
                    } else {
                        Matched::No
                    }
                }
            };
            match one {
                Matched::No => return Matched::No,
                Matched::Unknown => result = Matched::Unknown,
                Matched::Yes => {}
            }
        }
        result
    }

    /// The uids and gids this rule lets through (`--uid-owner N -j RETURN`
    /// or `ACCEPT`, not negated).
    pub fn owner_exemptions(&self) -> Vec<Owner> {
        if !matches!(self.target.as_deref(), Some("RETURN" | "ACCEPT")) {
            return Vec::new();
        }
        self.conditions
            .iter()
            .filter_map(|(negated, condition)| match (negated, condition) {
                (false, Condition::UidOwner(range)) => Some(Owner::Uid(*range)),
                (false, Condition::GidOwner(range)) => Some(Owner::Gid(*range)),
                _ => None,
            })
            .collect()
    }

    /// The single destination ports this rule names.
    pub fn ports(&self) -> Vec<u16> {
        self.conditions
            .iter()
            .filter_map(|(_, condition)| match condition {
                Condition::DestinationPorts(ports) => Some(ports.iter().map(|(low, _)| *low)),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The port a REDIRECT sends to (`--to-ports P`).
    pub fn redirect_port(&self) -> Option<u16> {
        let at = self
            .target_options
            .iter()
            .position(|o| o == "--to-ports" || o == "--to-port")?;
        range::<u16>(self.target_options.get(at + 1)?).map(|(low, _)| low)
    }
}

/// A uid or gid range the rules exempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Uid((u32, u32)),
    Gid((u32, u32)),
}

fn condition_holds(condition: &Condition, packet: &Packet) -> bool {
    let within = |(low, high): (u32, u32), value: u32| low <= value && value <= high;
    match condition {
        Condition::Protocol(name) => match name.as_str() {
            "all" | "0" => true,
            "tcp" | "6" => packet.protocol == Protocol::Tcp,
            "udp" | "17" => packet.protocol == Protocol::Udp,
            _ => false,
        },
        Condition::Destination(net) => net.contains(&packet.destination),
        Condition::OutInterface(name) => {
            let lo_matches = match name.strip_suffix('+') {
                Some(prefix) => "lo".starts_with(prefix),
                None => name == "lo",
            };
            packet.loopback_out && lo_matches
        }
        Condition::DestinationPorts(ports) => ports
            .iter()
            .any(|&(low, high)| low <= packet.port && packet.port <= high),
        Condition::UidOwner(range) => within(*range, packet.uid),
        Condition::GidOwner(range) => within(*range, packet.gid),
        Condition::State(states) => states.iter().any(|s| s == "NEW"),
        Condition::Unknown => false,
    }
}
