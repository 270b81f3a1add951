//! What the DNS proxy takes from the system's resolver configuration (`/etc/resolv.conf`): the nameservers it forwards to and the search domains, of which the first gives each table host its CNAME variant.

use std::net::SocketAddr;
use std::path::Path;

use hickory_resolver::net::NetError;
use hickory_resolver::system_conf::parse_resolv_conf;

/// The system resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The port of a `nameserver` line (resolv.conf has no port syntax).
const DNS_PORT: u16 = 53;

/// Nameservers and search domains, in the file's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    /// Without the final dot.
    pub search: Vec<String>,
}

/// Why the resolver configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolvConfError {
    #[error("cannot read {path}: {source} (give the upstream DNS server with --dns-server)")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source} (give the upstream DNS server with --dns-server)")]
    Parse { path: String, source: NetError },
}

impl ResolvConf {
    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ResolvConfError> {
        let text = std::fs::read(path).map_err(|source| ResolvConfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ResolvConfError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Parses resolv.conf text; a file without a nameserver is an error.
    pub fn parse(text: &[u8]) -> Result<Self, NetError> {
        let (config, _) = parse_resolv_conf(text)?;
        Ok(Self {
            nameservers: config
                .name_servers()
                .iter()
                .map(|server| SocketAddr::new(server.ip, DNS_PORT))
                .collect(),
            search: config
                .search()
                .iter()
                .map(|domain| domain.to_ascii().trim_end_matches('.').to_string())
                .filter(|domain| !domain.is_empty())
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_on_port_53_and_search_domains_in_order() {
        let conf = ResolvConf::parse(
            b"search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5\n",
        )
        .expect("parses");
        assert_eq!(
            conf.nameservers,
            vec![
                "10.96.0.10:53".parse::<SocketAddr>().expect("address"),
                "[fd00::a]:53".parse().expect("address"),
            ]
        );
        assert_eq!(
            conf.search,
            vec!["default.svc.cluster.local", "svc.cluster.local"]
        );
    }

    #[test]
    fn a_file_without_nameservers_is_refused() {
        assert!(ResolvConf::parse(b"search example.com\n").is_err());
    }
}
