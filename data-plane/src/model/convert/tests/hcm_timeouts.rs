//! An HTTP connection manager's timeouts: Envoy's defaults for what it
//! leaves unset (the agent's 60 s for the request head), `0s` for off, as
//! istiod sends `stream_idle_timeout`, and a rejection naming the field
//! for each timing setting the agent does not apply.

use std::time::Duration as StdDuration;

use proto::pb::envoy::config::core::v3::HttpProtocolOptions;
use proto::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
use proto::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, Rds, http_connection_manager,
};
use proto::wkt::{Duration, UInt32Value};

use super::{pack, socket_address};
use crate::model::convert::listener::HCM;
use crate::model::http_timeouts::HttpTimeouts;
use crate::model::listener::ChainAction;
use crate::model::secret::SecretSources;
use crate::model::{Error, listener_from_proto};

fn manager() -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: "outbound_0.0.0.0_80".into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            route_config_name: "80".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn listener(manager: &HttpConnectionManager) -> Listener {
    Listener {
        name: "0.0.0.0_80".into(),
        address: Some(socket_address("0.0.0.0", 80)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack(HCM, manager))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn timeouts(manager: &HttpConnectionManager) -> Result<HttpTimeouts, Error> {
    let converted = listener_from_proto(&listener(manager), &SecretSources::default())?;
    let ChainAction::Http(hcm) = &converted.filter_chains[0].action else {
        panic!("expected an HTTP connection manager");
    };
    Ok(hcm.timeouts)
}

fn seconds(seconds: i64) -> Option<Duration> {
    Some(Duration { seconds, nanos: 0 })
}

const fn secs(seconds: u64) -> Option<StdDuration> {
    Some(StdDuration::from_secs(seconds))
}

#[test]
fn unset_timeouts_are_envoy_s_defaults_with_a_60_second_head_timeout() {
    assert_eq!(
        timeouts(&manager()).unwrap(),
        HttpTimeouts {
            // Envoy has none; the agent closes a head unfinished after 60 s.
            request_headers: secs(60),
            // Envoy: stream idle 5 minutes, connection idle 1 hour.
            stream_idle: secs(300),
            idle: secs(3600),
            request: None,
            max_stream_duration: None,
            max_connection_duration: None,
        }
    );
}

#[test]
fn istiod_s_zero_stream_idle_timeout_turns_it_off() {
    let hcm = HttpConnectionManager {
        stream_idle_timeout: seconds(0),
        request_headers_timeout: seconds(0),
        ..manager()
    };
    let converted = timeouts(&hcm).unwrap();
    assert_eq!(converted.stream_idle, None);
    assert_eq!(
        converted.request_headers, None,
        "0s turns the head timeout off"
    );
    assert_eq!(converted.idle, secs(3600));
}

#[test]
fn set_timeouts_are_kept() {
    let hcm = HttpConnectionManager {
        request_headers_timeout: seconds(2),
        stream_idle_timeout: seconds(30),
        request_timeout: seconds(10),
        common_http_protocol_options: Some(HttpProtocolOptions {
            idle_timeout: seconds(90),
            max_connection_duration: seconds(600),
            max_stream_duration: seconds(20),
            ..Default::default()
        }),
        ..manager()
    };
    assert_eq!(
        timeouts(&hcm).unwrap(),
        HttpTimeouts {
            request_headers: secs(2),
            stream_idle: secs(30),
            request: secs(10),
            max_stream_duration: secs(20),
            idle: secs(90),
            max_connection_duration: secs(600),
        }
    );
}

#[test]
fn a_zero_connection_idle_timeout_turns_it_off() {
    let hcm = HttpConnectionManager {
        common_http_protocol_options: Some(HttpProtocolOptions {
            idle_timeout: seconds(0),
            ..Default::default()
        }),
        ..manager()
    };
    assert_eq!(timeouts(&hcm).unwrap().idle, None);
}

#[test]
fn timing_settings_the_agent_does_not_apply_are_rejected_by_field() {
    let cases = [
        (
            HttpConnectionManager {
                drain_timeout: seconds(5),
                ..manager()
            },
            "drain_timeout",
        ),
        (
            HttpConnectionManager {
                delayed_close_timeout: seconds(1),
                ..manager()
            },
            "delayed_close_timeout",
        ),
        (
            HttpConnectionManager {
                stream_flush_timeout: seconds(1),
                ..manager()
            },
            "stream_flush_timeout",
        ),
        (
            HttpConnectionManager {
                common_http_protocol_options: Some(HttpProtocolOptions {
                    max_headers_count: Some(UInt32Value { value: 10 }),
                    ..Default::default()
                }),
                ..manager()
            },
            "common_http_protocol_options.max_headers_count",
        ),
        (
            HttpConnectionManager {
                common_http_protocol_options: Some(HttpProtocolOptions {
                    max_requests_per_connection: Some(UInt32Value { value: 10 }),
                    ..Default::default()
                }),
                ..manager()
            },
            "common_http_protocol_options.max_requests_per_connection",
        ),
    ];
    for (hcm, field) in cases {
        let error = timeouts(&hcm).expect_err(field);
        assert_eq!(
            (error.name.as_str(), error.field.as_str()),
            (
                "0.0.0.0_80",
                format!("filter_chains[0].http_connection_manager.{field}").as_str()
            )
        );
    }
}
