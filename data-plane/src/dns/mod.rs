//! The agent's DNS proxy, as pilot-agent's with `ISTIO_META_DNS_CAPTURE`: on 127.0.0.1:15053 (UDP and TCP) it answers A and AAAA queries for the hosts of the name table the control plane sends (NDS), and forwards everything else to the upstream resolvers.
//!
//! `table.rs` holds the lookup, `answer.rs` the decision for one query,
//! `forward.rs` the upstream exchange, `server.rs` the listeners,
//! `resolv_conf.rs` the system resolver configuration and `sink.rs` NDS as
//! an xDS type.

pub mod answer;
pub mod forward;
pub mod resolv_conf;
pub mod server;
pub mod sink;
pub mod table;

#[cfg(test)]
mod fake_upstream;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use proto::nds::NameTable;

pub use answer::{Decision, Transport};
pub use forward::Forwarder;
pub use resolv_conf::{RESOLV_CONF, ResolvConf, ResolvConfError};
pub use server::{BindError, DnsListeners};
pub use sink::DnsSink;
pub use table::LookupTable;

/// The table in force and the way upstream.
pub struct DnsProxy {
    table: ArcSwapOption<LookupTable>,
    search: Vec<String>,
    forwarder: Forwarder,
}

impl DnsProxy {
    /// A proxy with no table yet (it answers SERVFAIL until the first one,
    /// as Istio's does), expanding table hosts with the first of `search`.
    pub fn new(search: Vec<String>, forwarder: Forwarder) -> Self {
        Self {
            table: ArcSwapOption::empty(),
            search,
            forwarder,
        }
    }

    /// Puts `names` in force for the queries that follow.
    pub fn update(&self, names: &NameTable) {
        let table = LookupTable::new(names, &self.search);
        tracing::info!(hosts = table.len(), "DNS name table updated");
        self.table.store(Some(Arc::new(table)));
    }

    /// What answers the encoded query `bytes`.
    pub fn decide(&self, bytes: &[u8], transport: Transport) -> Decision {
        let table = self.table.load();
        answer::decide(bytes, table.as_deref(), transport)
    }
}
