//! Cluster `upstream_connection_options` → model: TCP keepalive on
//! upstream sockets; the options the agent cannot honour are rejected.

use std::time::Duration;

use proto::pb::envoy::config::cluster::v3::Cluster as PbCluster;

use super::At;
use crate::model::Error;
use crate::model::keepalive::TcpKeepalive;

/// The cluster's TCP keepalive, if it asks for one. An empty
/// `tcp_keepalive` is SO_KEEPALIVE with the kernel's timings (istiod's
/// `tcpKeepalive: {}`). A 0 value is rejected: Linux refuses it, so Envoy
/// could not set it either.
pub(super) fn tcp_keepalive(c: &PbCluster, at: &At<'_>) -> Result<Option<TcpKeepalive>, Error> {
    let Some(options) = &c.upstream_connection_options else {
        return Ok(None);
    };
    let at = at.field("upstream_connection_options");
    if options.set_local_interface_name_on_upstream_connections {
        return Err(at
            .field("set_local_interface_name_on_upstream_connections")
            .error("not supported by this agent"));
    }
    if options.happy_eyeballs_config.is_some() {
        return Err(at
            .field("happy_eyeballs_config")
            .error("not supported by this agent"));
    }
    let Some(keepalive) = &options.tcp_keepalive else {
        return Ok(None);
    };
    let at = at.field("tcp_keepalive");
    let positive = |value: Option<u32>, name: &str| -> Result<Option<u32>, Error> {
        match value {
            Some(0) => Err(at.field(name).error("must be at least 1")),
            other => Ok(other),
        }
    };
    let seconds = |value: Option<u32>| value.map(|s| Duration::from_secs(u64::from(s)));
    Ok(Some(TcpKeepalive {
        probes: positive(
            keepalive.keepalive_probes.map(|v| v.value),
            "keepalive_probes",
        )?,
        time: seconds(positive(
            keepalive.keepalive_time.map(|v| v.value),
            "keepalive_time",
        )?),
        interval: seconds(positive(
            keepalive.keepalive_interval.map(|v| v.value),
            "keepalive_interval",
        )?),
    }))
}

#[cfg(test)]
mod tests {
    use proto::pb::envoy::config::cluster::v3::UpstreamConnectionOptions;
    use proto::pb::envoy::config::core::v3::TcpKeepalive as PbTcpKeepalive;
    use proto::wkt::UInt32Value;

    use super::*;

    fn cluster(keepalive: Option<PbTcpKeepalive>) -> PbCluster {
        PbCluster {
            name: "outbound|443||api.test".into(),
            upstream_connection_options: Some(UpstreamConnectionOptions {
                tcp_keepalive: keepalive,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn convert(c: &PbCluster) -> Result<Option<TcpKeepalive>, Error> {
        tcp_keepalive(c, &At::resource("cluster", &c.name))
    }

    #[test]
    fn keepalive_values_are_seconds_and_absent_ones_stay_the_kernels() {
        let c = cluster(Some(PbTcpKeepalive {
            keepalive_probes: Some(UInt32Value { value: 3 }),
            keepalive_time: Some(UInt32Value { value: 7200 }),
            keepalive_interval: None,
        }));
        assert_eq!(
            convert(&c).unwrap(),
            Some(TcpKeepalive {
                probes: Some(3),
                time: Some(Duration::from_secs(7200)),
                interval: None,
            })
        );
    }

    #[test]
    fn an_empty_keepalive_turns_keepalive_on_and_none_leaves_it_off() {
        assert_eq!(
            convert(&cluster(Some(PbTcpKeepalive::default()))).unwrap(),
            Some(TcpKeepalive::default())
        );
        assert_eq!(convert(&cluster(None)).unwrap(), None);
        assert_eq!(convert(&PbCluster::default()).unwrap(), None);
    }

    #[test]
    fn zero_values_and_unsupported_options_are_rejected() {
        let c = cluster(Some(PbTcpKeepalive {
            keepalive_interval: Some(UInt32Value { value: 0 }),
            ..Default::default()
        }));
        let err = convert(&c).unwrap_err();
        assert_eq!(
            err.field,
            "upstream_connection_options.tcp_keepalive.keepalive_interval"
        );
        let mut c = cluster(None);
        c.upstream_connection_options
            .as_mut()
            .unwrap()
            .set_local_interface_name_on_upstream_connections = true;
        assert!(convert(&c).is_err());
    }
}
