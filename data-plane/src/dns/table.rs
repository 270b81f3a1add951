//! The lookup table the DNS proxy answers from, built from the control plane's name table as pilot-agent builds its own: A and AAAA records per host, wildcard hosts, and the first search domain's variant of each host as a CNAME to it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proto::nds::NameTable;

/// TTL of every answer from the table, in seconds: low, as Istio keeps it,
/// so that a client that caches sees a new address soon.
pub const TTL: u32 = 30;

/// The addresses of one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Addresses {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

/// What the table says about a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The host is the mesh's: these records answer (none when the host has
    /// no address of the asked family; never NXDOMAIN).
    Answer(Vec<Record>),
    /// Not a host of the table, or a type other than A and AAAA: upstream
    /// DNS answers.
    Forward,
}

/// Hosts by lowercase fully qualified name (with the final dot).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LookupTable {
    hosts: HashMap<String, Addresses>,
    /// `<host>.<first search domain>.` → `<host>.`: an app's resolver tries
    /// that name first, and the CNAME saves it the rest of its search list.
    aliases: HashMap<String, String>,
}

impl LookupTable {
    /// The table for `names`; `search` is the app's search list (from
    /// resolv.conf), of which, as in Istio, only the first domain is used.
    /// An address that is no IP is skipped, and a host with none left out.
    pub fn new(names: &NameTable, search: &[String]) -> Self {
        let mut table = Self::default();
        let first_search = search.first().map(|domain| fqdn(domain));
        for (host, info) in &names.table {
            let mut addresses = Addresses::default();
            for ip in info.ips.iter().filter_map(|ip| ip.parse::<IpAddr>().ok()) {
                match ip {
                    IpAddr::V4(v4) => addresses.v4.push(v4),
                    IpAddr::V6(v6) => addresses.v6.push(v6),
                }
            }
            if addresses.v4.is_empty() && addresses.v6.is_empty() {
                continue;
            }
            let host = fqdn(host);
            if let Some(domain) = &first_search
                && !host.starts_with("*.")
            {
                let expanded = format!("{host}{domain}");
                if !names.table.contains_key(expanded.trim_end_matches('.')) {
                    table.aliases.insert(expanded, host.clone());
                }
            }
            table.hosts.insert(host, addresses);
        }
        table
    }

    /// The number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// What answers `record_type` for `name`: an exact host, a search-domain
    /// variant of one (its CNAME first, then the host's records), or the
    /// most specific wildcard host (`*.example.com` for `a.b.example.com`,
    /// its records named as asked).
    pub fn lookup(&self, name: &Name, record_type: RecordType) -> Lookup {
        let asked = fqdn(&name.to_ascii());
        let (key, alias) = match self.aliases.get(&asked) {
            Some(target) => (target.as_str(), Some(target)),
            None => match self.find_host(&asked) {
                Some(key) => (key, None),
                None => return Lookup::Forward,
            },
        };
        if !matches!(record_type, RecordType::A | RecordType::AAAA) {
            return Lookup::Forward;
        }
        let addresses = &self.hosts[key];
        let owner = match alias {
            Some(target) => name_of(target),
            None => name.clone(),
        };
        let records: Vec<Record> = match record_type {
            RecordType::A => addresses
                .v4
                .iter()
                .map(|ip| Record::from_rdata(owner.clone(), TTL, RData::A(A(*ip))))
                .collect(),
            _ => addresses
                .v6
                .iter()
                .map(|ip| Record::from_rdata(owner.clone(), TTL, RData::AAAA(AAAA(*ip))))
                .collect(),
        };
        let mut answer = Vec::new();
        if !records.is_empty()
            && let Some(target) = alias
        {
            answer.push(Record::from_rdata(
                name.clone(),
                TTL,
                RData::CNAME(CNAME(name_of(target))),
            ));
        }
        answer.extend(records);
        Lookup::Answer(answer)
    }

    /// The table's key for `asked`: itself, or its most specific wildcard.
    fn find_host<'a>(&'a self, asked: &str) -> Option<&'a str> {
        if let Some((key, _)) = self.hosts.get_key_value(asked) {
            return Some(key);
        }
        let mut rest = asked;
        while let Some((_, parent)) = rest.split_once('.') {
            if parent.is_empty() {
                break;
            }
            if let Some((key, _)) = self.hosts.get_key_value(&format!("*.{parent}")) {
                return Some(key);
            }
            rest = parent;
        }
        None
    }
}

/// `name` lowercased, with exactly one final dot.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

/// A table key as a DNS name; keys come from valid names, so the root
/// stands in for one that could not be.
fn name_of(key: &str) -> Name {
    Name::from_ascii(key).unwrap_or_else(|_| Name::root())
}

#[cfg(test)]
mod tests;
