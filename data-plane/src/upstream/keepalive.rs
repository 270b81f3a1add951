//! Upstream socket options: TCP keepalive as the cluster's
//! `upstream_connection_options.tcp_keepalive` asks (SO_KEEPALIVE, then
//! TCP_KEEPCNT / TCP_KEEPIDLE / TCP_KEEPINTVL for the values it gives).

use std::os::fd::AsFd;

use nix::sys::socket::{setsockopt, sockopt};

use crate::model::keepalive::TcpKeepalive;

/// Turns keepalive on for `socket` with the given timings; absent ones keep
/// the kernel's defaults.
pub(crate) fn apply(socket: &impl AsFd, keepalive: &TcpKeepalive) -> nix::Result<()> {
    setsockopt(socket, sockopt::KeepAlive, &true)?;
    if let Some(probes) = keepalive.probes {
        setsockopt(socket, sockopt::TcpKeepCount, &probes)?;
    }
    if let Some(time) = keepalive.time {
        setsockopt(socket, sockopt::TcpKeepIdle, &seconds(time))?;
    }
    if let Some(interval) = keepalive.interval {
        setsockopt(socket, sockopt::TcpKeepInterval, &seconds(interval))?;
    }
    Ok(())
}

fn seconds(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nix::sys::socket::getsockopt;

    use super::*;

    #[tokio::test]
    async fn the_socket_carries_the_clusters_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        assert!(!getsockopt(&stream, sockopt::KeepAlive).unwrap());
        let keepalive = TcpKeepalive {
            probes: Some(3),
            time: Some(Duration::from_secs(7200)),
            interval: Some(Duration::from_secs(75)),
        };
        apply(&stream, &keepalive).unwrap();
        assert!(getsockopt(&stream, sockopt::KeepAlive).unwrap());
        assert_eq!(getsockopt(&stream, sockopt::TcpKeepCount).unwrap(), 3);
        assert_eq!(getsockopt(&stream, sockopt::TcpKeepIdle).unwrap(), 7200);
        assert_eq!(getsockopt(&stream, sockopt::TcpKeepInterval).unwrap(), 75);
    }
}
