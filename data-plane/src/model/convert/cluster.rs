//! Clusters (CDS) → model: discovery, load balancing, TLS origination and
//! the HTTP protocol options.

use std::sync::Arc;
use std::time::Duration;

use proto::pb::envoy::config::cluster::v3::Cluster as PbCluster;
use proto::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, LbPolicy as PbLbPolicy,
};
use proto::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use proto::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    UpstreamProtocolOptions, explicit_http_config::ProtocolConfig,
};

use super::endpoint::load_assignment_named;
use super::{
    At, connection_options, decode, duration, enabled_duration, hash_policy, resilience, tls,
};
use crate::model::Error;
use crate::model::cluster::{Cluster, Discovery, LbPolicy, LoadAssignment};
use crate::model::secret::SecretSources;

/// The key of the HTTP protocol options in `typed_extension_protocol_options`.
pub(super) const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/// Envoy's default cluster connect timeout.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A cluster from CDS, its TLS resolved against `secrets`.
pub fn cluster(c: &PbCluster, secrets: &SecretSources) -> Result<Cluster, Error> {
    let at = At::resource("cluster", &c.name);
    let tls = tls::upstream_tls(
        c.transport_socket.as_ref(),
        secrets,
        &at.field("transport_socket"),
    )?;
    let protocol = http_protocol(c, &at)?;
    let (tls, secret_names) = match tls {
        Some(mut origination) => {
            origination.tls.verify_server_name = protocol.auto_san_validation;
            origination.tls.auto_sni = protocol.auto_sni;
            (Some(Arc::new(origination.tls)), origination.secret_names)
        }
        None => (None, Vec::new()),
    };
    Ok(Cluster {
        name: c.name.as_str().into(),
        discovery: discovery(c, &at)?,
        lb: lb_policy(c, &at)?,
        connect_timeout: c
            .connect_timeout
            .as_ref()
            .map_or(DEFAULT_CONNECT_TIMEOUT, duration),
        tls,
        http2: protocol.http2,
        follow_downstream_protocol: protocol.follow_downstream,
        idle_timeout: protocol.idle_timeout,
        max_requests_per_connection: protocol.max_requests_per_connection.filter(|&n| n > 0),
        max_connection_duration: protocol.max_connection_duration,
        tcp_keepalive: connection_options::tcp_keepalive(c, &at)?,
        circuit_breakers: resilience::circuit_breakers(c, &at)?,
        outlier_detection: resilience::outlier_detection(c, &at)?,
        healthy_panic_threshold: resilience::healthy_panic_threshold(c, &at)?,
        secret_names,
    })
}

/// How the cluster finds its hosts. No discovery type is STATIC (the
/// proto's default); a type this agent does not know is rejected.
fn discovery(c: &PbCluster, at: &At<'_>) -> Result<Discovery, Error> {
    let kind = match &c.cluster_discovery_type {
        None => DiscoveryType::Static,
        Some(ClusterDiscoveryType::Type(t)) => DiscoveryType::try_from(*t).map_err(|_| {
            at.field("type")
                .error(format!("unknown discovery type {t}"))
        })?,
        Some(ClusterDiscoveryType::ClusterType(custom)) => {
            return Err(at.field("cluster_type").error(format!(
                "custom cluster type {} is not supported",
                custom.name
            )));
        }
    };
    let assignment = || -> Result<LoadAssignment, Error> {
        c.load_assignment
            .as_ref()
            .map(|la| load_assignment_named(&c.name, la))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(match kind {
        DiscoveryType::Static => Discovery::Static(assignment()?),
        DiscoveryType::StrictDns => Discovery::Dns {
            assignment: assignment()?,
            logical: false,
        },
        DiscoveryType::LogicalDns => Discovery::Dns {
            assignment: assignment()?,
            logical: true,
        },
        DiscoveryType::Eds => Discovery::Eds {
            service_name: c
                .eds_cluster_config
                .as_ref()
                .map(|e| e.service_name.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(&c.name)
                .into(),
        },
        DiscoveryType::OriginalDst => Discovery::OriginalDst,
    })
}

/// CLUSTER_PROVIDED (Istio's choice for ORIGINAL_DST clusters, where the
/// destination picks the host) balances as ROUND_ROBIN would; RING_HASH
/// and MAGLEV take their settings from `lb_config`.
fn lb_policy(c: &PbCluster, at: &At<'_>) -> Result<LbPolicy, Error> {
    match PbLbPolicy::try_from(c.lb_policy) {
        Ok(PbLbPolicy::RoundRobin | PbLbPolicy::ClusterProvided) => Ok(LbPolicy::RoundRobin),
        Ok(PbLbPolicy::LeastRequest) => Ok(LbPolicy::LeastRequest),
        Ok(PbLbPolicy::Random) => Ok(LbPolicy::Random),
        Ok(PbLbPolicy::RingHash) => hash_policy::ring_hash(c, at),
        Ok(PbLbPolicy::Maglev) => hash_policy::maglev(c, at),
        _ => Err(at.field("lb_policy").error(
            "only ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV and CLUSTER_PROVIDED are supported",
        )),
    }
}

/// What the cluster's HTTP protocol options ask of its connections.
struct HttpProtocol {
    http2: bool,
    /// The upstream speaks the downstream request's HTTP version.
    follow_downstream: bool,
    /// Send the request's host as SNI (istiod sets it, with
    /// `auto_san_validation`, when a DestinationRule names no SNI).
    auto_sni: bool,
    /// Verify the upstream certificate against that name.
    auto_san_validation: bool,
    idle_timeout: Option<Duration>,
    max_requests_per_connection: Option<u32>,
    max_connection_duration: Option<Duration>,
}

/// The HTTP protocol options: `typed_extension_protocol_options` where set,
/// else the cluster-level fields Envoy still reads.
// Envoy still accepts the deprecated cluster-level HTTP options; so do we.
#[allow(deprecated)]
fn http_protocol(c: &PbCluster, at: &At<'_>) -> Result<HttpProtocol, Error> {
    let mut protocol = HttpProtocol {
        http2: c.http2_protocol_options.is_some(),
        follow_downstream: false,
        auto_sni: false,
        auto_san_validation: false,
        idle_timeout: None,
        max_requests_per_connection: c.max_requests_per_connection.as_ref().map(|v| v.value),
        max_connection_duration: None,
    };
    let Some(any) = c.typed_extension_protocol_options.get(HTTP_OPTIONS) else {
        return Ok(protocol);
    };
    let at = at.field("typed_extension_protocol_options");
    let options: HttpProtocolOptions =
        decode(any, &format!("type.googleapis.com/{HTTP_OPTIONS}"), &at)?;
    match &options.upstream_protocol_options {
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(explicit)) => {
            protocol.http2 = matches!(
                explicit.protocol_config,
                Some(ProtocolConfig::Http2ProtocolOptions(_))
            );
        }
        None => {}
        Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(_)) => {
            protocol.http2 = false;
            protocol.follow_downstream = true;
        }
        Some(_) => {
            return Err(at.field("upstream_protocol_options").error(
                "only explicit_http_config and use_downstream_protocol_config are supported",
            ));
        }
    }
    if let Some(upstream) = &options.upstream_http_protocol_options {
        if !upstream.override_auto_sni_header.is_empty() {
            return Err(at
                .field("upstream_http_protocol_options.override_auto_sni_header")
                .error("only the Host header can give the SNI"));
        }
        if upstream.auto_san_validation && !upstream.auto_sni {
            return Err(at
                .field("upstream_http_protocol_options.auto_san_validation")
                .error("only with auto_sni: this agent verifies the name it sends as SNI"));
        }
        protocol.auto_sni = upstream.auto_sni;
        protocol.auto_san_validation = upstream.auto_san_validation;
    }
    if let Some(common) = &options.common_http_protocol_options {
        protocol.idle_timeout = enabled_duration(common.idle_timeout.as_ref());
        if let Some(max) = &common.max_connection_duration {
            let max = duration(max);
            if max < Duration::from_millis(1) {
                return Err(at
                    .field("common_http_protocol_options.max_connection_duration")
                    .error("must be at least 1ms"));
            }
            protocol.max_connection_duration = Some(max);
        }
        if let Some(max) = &common.max_requests_per_connection {
            protocol.max_requests_per_connection = Some(max.value);
        }
    }
    Ok(protocol)
}
