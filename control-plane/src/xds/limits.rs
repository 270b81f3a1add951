//! What one proxy's stream may cost the control plane: the largest gRPC
//! message either side reads, the largest config one proxy is sent, and how
//! long a push may wait for the proxy to take it.

use std::time::Duration;

use proto::pb::envoy::service::discovery::v3::DeltaDiscoveryResponse;
use shared::type_url::short_name;
use tonic::Status;

use super::cache::{ByName, ProxySnapshot};
use super::outgoing::Carrier;

/// The largest gRPC message read or written on an xDS stream: the agent's
/// own limit, so that a proxy's first delta request (every resource name it
/// holds, with its version) is read whole, and no response is larger than
/// the agent reads.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// Default of `--max-config-bytes-per-proxy`: four full messages, room for
/// every type of a proxy that sees 100,000 hosts.
pub const DEFAULT_MAX_CONFIG_BYTES_PER_PROXY: usize = 4 * MAX_MESSAGE_SIZE;
/// Default of `--xds-send-timeout`.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Room kept in a message for a response's own fields besides its resources
/// (version, nonce, type, the names a delta response removes).
const RESPONSE_HEAD_ROOM: usize = 1024 * 1024;

/// The bounds every stream is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of resources one proxy is sent, all types together.
    pub max_config_bytes_per_proxy: usize,
    /// How long a response may wait for the proxy to take it before its
    /// connection is closed.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_config_bytes_per_proxy: DEFAULT_MAX_CONFIG_BYTES_PER_PROXY,
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// A config a proxy cannot be sent whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Oversized {
    #[error(
        "its config is {size} bytes, over the limit of {limit} bytes per proxy \
         (--max-config-bytes-per-proxy): narrow what it sees (a Sidecar's egress hosts, \
         exportTo) or raise the limit"
    )]
    PerProxy { size: usize, limit: usize },
    #[error(
        "its {kind} are {size} bytes, more than one xDS response may carry \
         ({limit} bytes): narrow what it sees (a Sidecar's egress hosts, exportTo)"
    )]
    PerResponse {
        kind: &'static str,
        size: usize,
        limit: usize,
    },
}

impl Oversized {
    /// The `limit` label of `pilot_xds_config_size_exceeded_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::PerProxy { .. } => "per_proxy",
            Self::PerResponse { .. } => "per_response",
        }
    }

    /// The status a stream refused for it ends with.
    pub fn status(&self, node_id: &str) -> Status {
        Status::resource_exhausted(format!(
            "the control plane refuses to send proxy {node_id:?} its config: {self}"
        ))
    }
}

/// The bytes the resources of one type take in a response (as a delta
/// response frames them, the larger of the two protocols).
pub fn type_size(by_name: &ByName) -> usize {
    by_name
        .values()
        .map(|r| DeltaDiscoveryResponse::resource_len(r))
        .sum()
}

/// Whether `snapshot` can be sent: each type in one response, and all of
/// them within the per-proxy limit.
pub fn check(snapshot: &ProxySnapshot, limits: &Limits) -> Result<(), Oversized> {
    for (type_url, size) in &snapshot.sizes {
        check_response(type_url, *size, MAX_MESSAGE_SIZE - RESPONSE_HEAD_ROOM)?;
    }
    let size = snapshot.sizes.values().sum();
    if size > limits.max_config_bytes_per_proxy {
        return Err(Oversized::PerProxy {
            size,
            limit: limits.max_config_bytes_per_proxy,
        });
    }
    Ok(())
}

/// Whether a response of `type_url` whose encoding is `len` bytes fits one
/// message.
pub fn check_message(type_url: &str, len: usize) -> Result<(), Oversized> {
    check_response(type_url, len, MAX_MESSAGE_SIZE)
}

fn check_response(type_url: &str, size: usize, limit: usize) -> Result<(), Oversized> {
    if size > limit {
        return Err(Oversized::PerResponse {
            kind: short_name(type_url),
            size,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(sizes: &[(&'static str, usize)]) -> ProxySnapshot {
        ProxySnapshot {
            sizes: sizes.iter().copied().collect(),
            ..ProxySnapshot::default()
        }
    }

    #[test]
    fn the_agent_reads_what_the_control_plane_reads_and_sends() {
        assert_eq!(MAX_MESSAGE_SIZE, 64 * 1024 * 1024);
        const { assert!(DEFAULT_MAX_CONFIG_BYTES_PER_PROXY >= MAX_MESSAGE_SIZE) };
    }

    #[test]
    fn a_config_within_both_limits_is_sent() {
        let limits = Limits::default();
        let sizes = [
            (shared::type_url::CLUSTER, 40 << 20),
            (shared::type_url::LISTENER, 40 << 20),
        ];
        assert_eq!(check(&snapshot(&sizes), &limits), Ok(()));
    }

    #[test]
    fn a_type_larger_than_one_message_is_refused_naming_it() {
        let sizes = [(shared::type_url::CLUSTER, MAX_MESSAGE_SIZE)];
        let error = check(&snapshot(&sizes), &Limits::default()).unwrap_err();
        assert_eq!(error.label(), "per_response");
        let message = error
            .status("sidecar~1.2.3.4~a.b~b.svc.cluster.local")
            .to_string();
        assert!(message.contains("clusters are 67108864 bytes"), "{message}");
        assert!(message.contains("sidecar~1.2.3.4~a.b"), "{message}");
    }

    #[test]
    fn the_total_is_bounded_by_the_flag() {
        let limits = Limits {
            max_config_bytes_per_proxy: 1000,
            ..Limits::default()
        };
        let sizes = [
            (shared::type_url::CLUSTER, 600),
            (shared::type_url::LISTENER, 600),
        ];
        let error = check(&snapshot(&sizes), &limits).unwrap_err();
        assert_eq!(
            error,
            Oversized::PerProxy {
                size: 1200,
                limit: 1000
            }
        );
        let status = error.status("sidecar~x~y.z~z.svc.cluster.local");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("--max-config-bytes-per-proxy"));
    }
}
