//! Fault injection (`envoy.filters.http.fault`'s `HTTPFault`): a fixed
//! delay before the request goes on, and an abort answered locally, each
//! for a share of requests.

use std::sync::Arc;
use std::time::Duration;

use super::fraction::Fraction;

/// The faults of one filter or route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub delay: Option<Delay>,
    pub abort: Option<Abort>,
}

/// Hold the request for `duration` before it goes on (flag DI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delay {
    pub duration: Duration,
    pub percentage: Fraction,
}

/// Answer the request locally (flag FI, details `fault_filter_abort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abort {
    pub status: AbortStatus,
    pub percentage: Fraction,
    /// The body of the answer; Envoy's is `fault filter abort`.
    pub body: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortStatus {
    /// This HTTP status.
    Http(u16),
    /// HTTP 200 with this `grpc-status` (for a gRPC request, trailers-only).
    Grpc(u32),
}

/// Envoy's body of an aborted request.
pub const ABORT_BODY: &str = "fault filter abort";

impl Fault {
    /// The delay for a request whose roll is `roll`, if it gets one.
    pub fn delay(&self, roll: u64) -> Option<Duration> {
        self.delay
            .as_ref()
            .filter(|delay| !delay.duration.is_zero() && delay.percentage.hits(roll))
            .map(|delay| delay.duration)
    }

    /// The abort for a request whose roll is `roll`, if it gets one.
    pub fn abort(&self, roll: u64) -> Option<&Abort> {
        self.abort
            .as_ref()
            .filter(|abort| abort.percentage.hits(roll))
    }
}
