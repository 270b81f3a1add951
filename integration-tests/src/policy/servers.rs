//! A side's named upstream servers on the host end of its veth: the
//! endpoints scenarios route to, each answering with its name, and the
//! values (`${HOST}`, `${PORT_<name>}`) config templates are rendered with.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::{Context, Result};

use crate::tls::TestCa;
use crate::upstream::{Failing, RecordedRequest, Upstream};

/// One named server: plain HTTP, or HTTPS with a certificate of the test CA
/// for `names`.
#[derive(Debug, Clone, Copy)]
pub struct ServerSpec {
    pub name: &'static str,
    pub tls_names: Option<&'static [&'static str]>,
}

impl ServerSpec {
    pub const fn http(name: &'static str) -> Self {
        Self {
            name,
            tls_names: None,
        }
    }

    pub const fn https(name: &'static str, names: &'static [&'static str]) -> Self {
        Self {
            name,
            tls_names: Some(names),
        }
    }
}

/// The running servers of one side.
pub(super) struct Servers {
    host: Ipv4Addr,
    servers: Vec<(&'static str, Upstream)>,
}

impl Servers {
    /// Starts each of `specs` on a port of its own at `host`.
    pub(super) fn start(host: Ipv4Addr, specs: &[ServerSpec], ca: &TestCa) -> Result<Self> {
        let addr = SocketAddr::from((host, 0));
        let servers = specs
            .iter()
            .map(|spec| {
                let server = match spec.tls_names {
                    None => Upstream::named_on(addr, spec.name),
                    Some(names) => Upstream::named_https_on(addr, spec.name, ca, names),
                };
                Ok((spec.name, server?))
            })
            .collect::<Result<_>>()?;
        Ok(Self { host, servers })
    }

    pub(super) fn get(&self, name: &str) -> Result<&Upstream> {
        self.servers
            .iter()
            .find(|(server, _)| *server == name)
            .map(|(_, server)| server)
            .with_context(|| format!("no upstream server named {name}"))
    }

    /// How many requests each server has received so far.
    pub(super) fn marks(&self) -> Vec<usize> {
        self.servers
            .iter()
            .map(|(_, server)| server.requests().len())
            .collect()
    }

    /// The requests server `name` received since `marks`.
    pub(super) fn received_since(
        &self,
        name: &str,
        marks: &[usize],
    ) -> Result<Vec<RecordedRequest>> {
        let index = self
            .servers
            .iter()
            .position(|(server, _)| *server == name)
            .with_context(|| format!("no upstream server named {name}"))?;
        let requests = self.servers[index].1.requests();
        Ok(requests[marks[index].min(requests.len())..].to_vec())
    }

    /// Every server answers again.
    pub(super) fn heal(&self) {
        for (_, server) in &self.servers {
            server.fail(Failing::Never);
        }
    }

    /// `template` with `${HOST}` and each `${PORT_<name>}` replaced.
    pub(super) fn render(&self, template: &str) -> String {
        self.servers.iter().fold(
            template.replace("${HOST}", &self.host.to_string()),
            |text, (name, server)| {
                text.replace(&format!("${{PORT_{name}}}"), &server.port().to_string())
            },
        )
    }
}
