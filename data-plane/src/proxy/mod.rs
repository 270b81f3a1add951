//! Listeners and what they do with connections: accept (or take over a
//! captured connection by its original destination), pick a filter chain
//! by destination port and SNI, then run HTTP routing or a TCP proxy.

pub mod access_log;
pub mod admission;
pub mod busy_poll;
pub mod drain;
pub mod explicit;
pub mod http;
pub mod identity;
mod inspect;
mod listeners;
mod orig_dst;
mod outbound;
pub mod respond;
pub mod sni;
pub mod stats;
mod tcp;
#[cfg(test)]
pub(crate) mod test_fixtures;

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

use crate::access_log_service::AccessLogQueue;
use crate::store::ConfigStore;
use crate::upstream::Upstreams;
use busy_poll::Activity;

pub use listeners::{BindErrors, BindPlan, ListenerManager, ListenerSockets};
use stats::Stats;

/// What every connection handler needs.
pub struct ProxyContext {
    pub store: Arc<ConfigStore>,
    pub upstreams: Arc<Upstreams>,
    pub stats: Arc<Stats>,
    /// Traffic events for the busy pollers (`--busy-poll`), if any.
    pub activity: Option<Arc<Activity>>,
    /// Where gRPC access log entries go; `None` when this agent does not
    /// report to the control plane.
    pub access_log_service: Option<AccessLogQueue>,
}

impl ProxyContext {
    /// Notes a connection, request or response for the busy pollers.
    pub fn record_activity(&self) {
        if let Some(activity) = &self.activity {
            activity.record();
        }
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
}

/// A fast, non-cryptographic random number (xorshift64*), per thread.
pub fn fast_random() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}
