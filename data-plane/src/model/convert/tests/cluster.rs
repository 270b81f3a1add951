//! Clusters: discovery, load balancing, timeouts and HTTP protocol options.

use std::time::Duration;

use proto::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, CustomClusterType, DiscoveryType, EdsClusterConfig, LbPolicy,
};
use proto::pb::envoy::config::cluster::v3::{CircuitBreakers, Cluster, circuit_breakers};
use proto::pb::envoy::config::core::v3::HttpProtocolOptions as CommonHttpProtocolOptions;
use proto::pb::envoy::config::core::v3::UpstreamHttpProtocolOptions;
use proto::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints,
};
use proto::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use proto::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
    AutoHttpConfig, ExplicitHttpConfig, UpstreamProtocolOptions, explicit_http_config,
};
use proto::wkt::{Any, UInt32Value};

use super::{assert_rejected, pack, starting};
use crate::model::cluster::{Discovery, LbPolicy as ModelLbPolicy};
use crate::model::convert::cluster::HTTP_OPTIONS as HTTP_OPTIONS_KEY;
use crate::model::secret::SecretSources;
use crate::model::{Error, cluster_from_proto};

const HTTP_OPTIONS: &str =
    "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

const NAME: &str = "outbound|80||httpbin.org";

fn base(kind: DiscoveryType) -> Cluster {
    Cluster {
        name: NAME.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        ..Default::default()
    }
}

fn convert(c: &Cluster) -> Result<crate::model::Cluster, Error> {
    cluster_from_proto(c, &SecretSources::default())
}

fn with_http_options(options: &HttpProtocolOptions) -> Cluster {
    let mut c = base(DiscoveryType::Eds);
    c.typed_extension_protocol_options
        .insert(HTTP_OPTIONS_KEY.into(), pack(HTTP_OPTIONS, options));
    c
}

#[test]
fn envoys_defaults_apply_to_an_empty_cluster() {
    let c = Cluster {
        name: NAME.into(),
        ..Default::default()
    };
    let converted = convert(&c).unwrap();
    assert_eq!(
        converted.discovery,
        Discovery::Static(Default::default()),
        "no type is STATIC"
    );
    assert_eq!(converted.lb, ModelLbPolicy::RoundRobin);
    assert_eq!(converted.connect_timeout, Duration::from_secs(5));
    assert!(converted.tls.is_none());
    assert!(!converted.http2);
    assert_eq!(converted.idle_timeout, None);
    assert_eq!(converted.max_requests_per_connection, None);
    assert_eq!(converted.circuit_breakers, Default::default());
    assert_eq!(converted.outlier_detection, None);
    assert!(converted.secret_names.is_empty());
}

#[test]
fn dns_clusters_keep_their_inline_hosts() {
    let mut c = base(DiscoveryType::StrictDns);
    c.load_assignment = Some(ClusterLoadAssignment {
        cluster_name: NAME.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(
                    proto::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier::Endpoint(
                        proto::pb::envoy::config::endpoint::v3::Endpoint {
                            address: Some(super::socket_address("httpbin.org", 80)),
                            ..Default::default()
                        },
                    ),
                ),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let Discovery::Dns {
        assignment,
        logical,
    } = convert(&c).unwrap().discovery
    else {
        panic!("expected DNS discovery");
    };
    assert!(!logical);
    assert_eq!(assignment.endpoints[0].host, "httpbin.org");
    c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(DiscoveryType::LogicalDns as i32));
    assert!(matches!(
        convert(&c).unwrap().discovery,
        Discovery::Dns { logical: true, .. }
    ));
}

#[test]
fn eds_uses_the_service_name_or_else_the_cluster_name() {
    let mut c = base(DiscoveryType::Eds);
    assert_eq!(
        convert(&c).unwrap().discovery,
        Discovery::Eds {
            service_name: NAME.into()
        }
    );
    c.eds_cluster_config = Some(EdsClusterConfig {
        service_name: "httpbin-eds".into(),
        ..Default::default()
    });
    assert_eq!(
        convert(&c).unwrap().discovery,
        Discovery::Eds {
            service_name: "httpbin-eds".into()
        }
    );
}

#[test]
fn original_dst_with_cluster_provided_balancing_is_accepted() {
    let mut c = base(DiscoveryType::OriginalDst);
    c.lb_policy = LbPolicy::ClusterProvided as i32;
    let converted = convert(&c).unwrap();
    assert_eq!(converted.discovery, Discovery::OriginalDst);
    assert_eq!(converted.lb, ModelLbPolicy::RoundRobin);
}

#[test]
fn load_balancing_timeouts_and_limits_are_kept() {
    let mut c = base(DiscoveryType::Eds);
    c.lb_policy = LbPolicy::LeastRequest as i32;
    c.connect_timeout = Some(proto::wkt::Duration {
        seconds: 10,
        nanos: 0,
    });
    c.circuit_breakers = Some(CircuitBreakers {
        thresholds: vec![circuit_breakers::Thresholds {
            max_connections: Some(UInt32Value { value: 100 }),
            ..Default::default()
        }],
        ..Default::default()
    });
    let converted = convert(&c).unwrap();
    assert_eq!(converted.lb, ModelLbPolicy::LeastRequest);
    assert_eq!(converted.connect_timeout, Duration::from_secs(10));
    assert_eq!(converted.circuit_breakers.max_connections, 100);
    assert_eq!(
        converted.circuit_breakers.max_pending_requests, 1024,
        "Envoy's default"
    );
    c.lb_policy = LbPolicy::Random as i32;
    assert_eq!(convert(&c).unwrap().lb, ModelLbPolicy::Random);
}

#[test]
fn explicit_http2_and_common_options_are_kept() {
    let options = HttpProtocolOptions {
        common_http_protocol_options: Some(CommonHttpProtocolOptions {
            idle_timeout: Some(proto::wkt::Duration {
                seconds: 60,
                nanos: 0,
            }),
            max_requests_per_connection: Some(UInt32Value { value: 7 }),
            ..Default::default()
        }),
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(explicit_http_config::ProtocolConfig::Http2ProtocolOptions(
                    Default::default(),
                )),
            },
        )),
        ..Default::default()
    };
    let converted = convert(&with_http_options(&options)).unwrap();
    assert!(converted.http2);
    assert_eq!(converted.idle_timeout, Some(Duration::from_secs(60)));
    assert_eq!(converted.max_requests_per_connection, Some(7));
}

#[test]
fn a_discovery_type_the_agent_does_not_know_is_rejected() {
    let mut c = base(DiscoveryType::Static);
    c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(42));
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "type",
        "unknown discovery type 42",
    );
    c.cluster_discovery_type = Some(ClusterDiscoveryType::ClusterType(CustomClusterType {
        name: "envoy.clusters.aggregate".into(),
        ..Default::default()
    }));
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "cluster_type",
        "custom cluster type envoy.clusters.aggregate is not supported",
    );
}

#[test]
fn a_load_balancing_policy_the_agent_does_not_have_is_rejected() {
    let mut c = base(DiscoveryType::Eds);
    c.lb_policy = LbPolicy::LoadBalancingPolicyConfig as i32;
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "lb_policy",
        "only ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV and CLUSTER_PROVIDED are supported",
    );
}

#[test]
fn http_options_must_be_explicit_and_decode() {
    let auto = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::AutoConfig(
            AutoHttpConfig::default(),
        )),
        ..Default::default()
    };
    assert_rejected(
        convert(&with_http_options(&auto)),
        "cluster",
        NAME,
        "typed_extension_protocol_options.upstream_protocol_options",
        "only explicit_http_config and use_downstream_protocol_config are supported",
    );

    let mut c = base(DiscoveryType::Eds);
    let wrong = pack(
        "type.googleapis.com/google.protobuf.Empty",
        &proto::wkt::Empty {},
    );
    c.typed_extension_protocol_options
        .insert(HTTP_OPTIONS_KEY.into(), wrong);
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "typed_extension_protocol_options",
        &format!("expected {HTTP_OPTIONS}, got type.googleapis.com/google.protobuf.Empty"),
    );

    let garbage = Any {
        type_url: HTTP_OPTIONS.into(),
        value: vec![0xff, 0xff],
    };
    c.typed_extension_protocol_options
        .insert(HTTP_OPTIONS_KEY.into(), garbage);
    assert_rejected(
        convert(&c),
        "cluster",
        NAME,
        "typed_extension_protocol_options",
        starting(&format!("cannot decode {HTTP_OPTIONS}: ")),
    );
}

#[test]
fn a_bad_inline_endpoint_rejects_the_cluster_naming_it() {
    let mut c = base(DiscoveryType::Static);
    c.load_assignment = Some(ClusterLoadAssignment {
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint::default()],
            ..Default::default()
        }],
        ..Default::default()
    });
    assert_rejected(
        convert(&c),
        "endpoints",
        NAME,
        "endpoints[0].lb_endpoints[0]",
        "an endpoint address is required",
    );
}

#[test]
fn max_connection_duration_drains_connections_by_age() {
    let options = |seconds, nanos| HttpProtocolOptions {
        common_http_protocol_options: Some(CommonHttpProtocolOptions {
            max_connection_duration: Some(proto::wkt::Duration { seconds, nanos }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let c = convert(&with_http_options(&options(30, 0))).unwrap();
    assert_eq!(c.max_connection_duration, Some(Duration::from_secs(30)));
    assert_eq!(
        convert(&base(DiscoveryType::Eds))
            .unwrap()
            .max_connection_duration,
        None
    );
    let err = convert(&with_http_options(&options(0, 0))).unwrap_err();
    assert_eq!(
        err.field,
        "typed_extension_protocol_options.common_http_protocol_options.max_connection_duration"
    );
}

#[test]
fn use_downstream_protocol_config_follows_the_request() {
    let downstream = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(
            Default::default(),
        )),
        ..Default::default()
    };
    let c = convert(&with_http_options(&downstream)).unwrap();
    assert!(c.follow_downstream_protocol);
    assert!(!c.http2, "an HTTP/1.1 request still goes out as HTTP/1.1");
    assert!(
        !convert(&base(DiscoveryType::Eds))
            .unwrap()
            .follow_downstream_protocol
    );
}

#[test]
fn auto_san_validation_without_auto_sni_is_rejected() {
    let options = HttpProtocolOptions {
        upstream_http_protocol_options: Some(UpstreamHttpProtocolOptions {
            auto_san_validation: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = convert(&with_http_options(&options)).unwrap_err();
    assert_eq!(
        err.field,
        "typed_extension_protocol_options.upstream_http_protocol_options.auto_san_validation"
    );
}

#[test]
fn max_requests_per_connection_zero_is_no_limit() {
    let options = HttpProtocolOptions {
        common_http_protocol_options: Some(CommonHttpProtocolOptions {
            max_requests_per_connection: Some(UInt32Value { value: 0 }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        convert(&with_http_options(&options))
            .unwrap()
            .max_requests_per_connection,
        None
    );
}
