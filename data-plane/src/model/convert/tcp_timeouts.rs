//! A TCP proxy's timeouts as Envoy reads them: `idle_timeout` (one hour
//! when absent, disabled by `0s`) and `max_downstream_connection_duration`
//! (none when absent, at least 1ms when set).

use std::time::Duration;

use proto::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

use super::{At, duration};
use crate::model::Error;

/// Envoy's `idle_timeout` when the TCP proxy does not set one.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The shortest `max_downstream_connection_duration` Envoy accepts.
const MIN_MAX_DURATION: Duration = Duration::from_millis(1);

/// The idle timeout and the maximum connection duration of `tcp`.
pub(super) fn tcp_timeouts(
    tcp: &TcpProxy,
    at: &At<'_>,
) -> Result<(Option<Duration>, Option<Duration>), Error> {
    let idle = match &tcp.idle_timeout {
        None => Some(DEFAULT_IDLE_TIMEOUT),
        Some(d) => Some(duration(d)).filter(|d| !d.is_zero()),
    };
    let max = tcp
        .max_downstream_connection_duration
        .as_ref()
        .map(|d| {
            let max = duration(d);
            if max < MIN_MAX_DURATION {
                return Err(at
                    .field("max_downstream_connection_duration")
                    .error(format!(
                        "{max:?} is shorter than 1ms, the least Envoy accepts"
                    )));
            }
            Ok(max)
        })
        .transpose()?;
    Ok((idle, max))
}
