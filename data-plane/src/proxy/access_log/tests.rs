//! Rendering, operator by operator, as Envoy writes each (its docs, and
//! Envoy 1.40's own lines for the same formats): text with `-` for a
//! missing value, JSON with sorted keys, sole numeric operators as numbers
//! and missing values as null; Istio's line against a golden file.

use std::time::{Duration, UNIX_EPOCH};

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use proto::pb::google::protobuf::{Struct, Value as PbValue, value::Kind};
use shared::access_log::ISTIO_TEXT_FORMAT;

use super::AccessLog;
use crate::model::log_format::{LogFormat, TextFormat, json_object};
use crate::model::proto_fixtures::json_format;

/// 2026-12-03T13:34:47.104885Z, as Envoy logged it.
fn start() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_nanos(1_796_304_887_104_885_000)
}

fn http_log() -> AccessLog {
    let mut log = AccessLog::new(
        "HTTP/1.1",
        Some("10.0.0.1:80".parse().unwrap()),
        Some("10.0.0.2:5555".parse().unwrap()),
    );
    log.start_time = start();
    log.method = Some(Method::GET);
    log.path = Some(PathAndQuery::from_static("/headers?a=1"));
    log.response_code = 200;
    log.response_code_details = "via_upstream";
    log.bytes_received = 12;
    log.bytes_sent = 345;
    log.upstream_service_time = Some(7);
    log.authority = Some(HeaderValue::from_static("httpbin.org"));
    log.user_agent = Some(HeaderValue::from_static("curl/8.5.0"));
    log.request_id = Some(HeaderValue::from_static("4f1c"));
    log.upstream_cluster = Some("outbound|80||httpbin.org".into());
    log.upstream_host = Some("127.0.0.1:8080".parse().unwrap());
    log.upstream_local = Some("127.0.0.1:41234".parse().unwrap());
    log.route_name = Some("default".into());
    log
}

fn tcp_log() -> AccessLog {
    let mut log = AccessLog::new(
        "-",
        Some("93.184.216.34:443".parse().unwrap()),
        Some("10.0.0.2:5555".parse().unwrap()),
    );
    log.start_time = start();
    log.response_flags = "UH";
    log.upstream_cluster = Some("BlackHoleCluster".into());
    log.requested_server_name = Some("blocked.example".into());
    log
}

fn text(log: &AccessLog, format: &str) -> String {
    let format = LogFormat::Text(TextFormat::parse(format).unwrap());
    let (mut out, mut scratch) = (String::new(), String::new());
    log.render(&format, &mut out, &mut scratch);
    out
}

fn json(log: &AccessLog, fields: &[(&str, &str)]) -> String {
    let format = LogFormat::Json(json_object(&json_format(fields)).unwrap());
    let (mut out, mut scratch) = (String::new(), String::new());
    log.render(&format, &mut out, &mut scratch);
    out
}

#[test]
fn start_time_is_rfc3339_utc_with_milliseconds_or_the_format_given() {
    let log = http_log();
    assert_eq!(text(&log, "%START_TIME%"), "2026-12-03T13:34:47.104Z");
    assert_eq!(
        text(&log, "%START_TIME(%s.%3f %Y/%m/%d %H:%M:%S%z)%"),
        "1796304887.104 2026/12/03 13:34:47+0000"
    );
    assert_eq!(
        text(&log, "%START_TIME(%Y %f %6f %s %e)%"),
        "2026 104885000 104885 1796304887  3"
    );
    assert_eq!(
        text(&log, "%START_TIME(%F %T %Z %j %a %b %y %1f %E3S)%"),
        "2026-12-03 13:34:47 UTC 337 Thu Dec 26 1 47.104"
    );
}

#[test]
fn request_headers_with_alternatives_and_truncation() {
    let mut log = http_log();
    assert_eq!(
        text(
            &log,
            "%REQ(:METHOD)% %REQ(:PATH)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
        ),
        "GET /headers?a=1 /headers?a=1"
    );
    assert_eq!(
        text(
            &log,
            "%REQ(:authority)% %REQ(HOST)% %REQ(USER-AGENT):4% %REQ(X-REQUEST-ID)%"
        ),
        "httpbin.org httpbin.org curl 4f1c"
    );
    assert_eq!(
        text(&log, "%REQ(X-FORWARDED-FOR?USER-AGENT)%"),
        "curl/8.5.0"
    );
    log.forwarded_for = Some(HeaderValue::from_static("10.1.1.1"));
    assert_eq!(text(&log, "%REQ(X-FORWARDED-FOR?USER-AGENT)%"), "10.1.1.1");
    assert_eq!(text(&tcp_log(), "%REQ(:METHOD)% %REQ(:PATH):3%"), "- -");
}

#[test]
fn response_fields() {
    let mut log = http_log();
    assert_eq!(
        text(
            &log,
            "%PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"
        ),
        "HTTP/1.1 200 - via_upstream - 7"
    );
    log.response_code = 503;
    log.response_flags = "UF";
    log.response_code_details = "upstream_reset_before_response_started{remote_connection_failure}";
    log.transport_failure_reason = "delayed connect error: Connection refused".into();
    log.upstream_service_time = None;
    assert_eq!(
        text(
            &log,
            "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"
        ),
        "503 UF upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused} \"delayed_connect_error:_Connection_refused\" -"
    );
    let mut idle = tcp_log();
    idle.connection_termination_details = Some("tcp_session_idle_timeout");
    assert_eq!(
        text(
            &idle,
            "%PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%"
        ),
        "- 0 UH - tcp_session_idle_timeout"
    );
}

#[test]
fn bytes_duration_addresses_and_names() {
    let mut log = http_log();
    log.peer_identity = Some("spiffe://cluster.local/ns/default/sa/sleep".into());
    assert_eq!(
        text(
            &log,
            "%BYTES_RECEIVED% %BYTES_SENT% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS%"
        ),
        "12 345 127.0.0.1:8080 outbound|80||httpbin.org outbound|80||httpbin.org 127.0.0.1:41234"
    );
    assert_eq!(
        text(
            &log,
            "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
        ),
        "10.0.0.1:80 10.0.0.1 10.0.0.2:5555 10.0.0.2"
    );
    assert_eq!(
        text(
            &log,
            "%REQUESTED_SERVER_NAME% %ROUTE_NAME% %DOWNSTREAM_PEER_URI_SAN%"
        ),
        "- default spiffe://cluster.local/ns/default/sa/sleep"
    );
    assert_eq!(
        text(
            &tcp_log(),
            "%REQUESTED_SERVER_NAME% %ROUTE_NAME% %UPSTREAM_HOST% %UPSTREAM_LOCAL_ADDRESS%"
        ),
        "blocked.example - - -"
    );
    let duration = text(&log, "%DURATION%");
    assert!(duration.parse::<u64>().is_ok(), "{duration}");
}

#[test]
fn a_literal_percent_and_text_around_operators_are_kept() {
    assert_eq!(
        text(&http_log(), "100%% [%RESPONSE_CODE%]\n"),
        "100% [200]\n"
    );
}

#[test]
fn istios_text_line_matches_its_golden() {
    let mut log = http_log();
    log.started = tokio::time::Instant::now();
    let line = text(&log, ISTIO_TEXT_FORMAT);
    let golden = include_str!("testdata/istio_text.golden");
    // The duration is the one field that depends on the clock.
    let (before, after) = golden.split_once("%DURATION%").unwrap();
    assert!(line.starts_with(before), "{line}");
    assert!(line.ends_with(after), "{line}");
    let duration = &line[before.len()..line.len() - after.len()];
    assert!(duration.parse::<u64>().is_ok(), "{line}");
}

#[test]
fn json_sorts_keys_types_sole_numeric_operators_and_nulls_missing_values() {
    let line = json(
        &http_log(),
        &[
            ("zeta", "%RESPONSE_CODE%"),
            ("alpha", "%REQ(X-FORWARDED-FOR)%"),
            ("mid", "code=%RESPONSE_CODE% %REQ(X-FORWARDED-FOR)%"),
            ("bytes", "%BYTES_SENT%"),
            ("ust", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"),
            ("flags", "%RESPONSE_FLAGS%"),
            ("sni", "%REQUESTED_SERVER_NAME%"),
            ("ua", "%REQ(USER-AGENT):3%"),
            ("start", "%START_TIME%"),
            ("lit", "plain"),
        ],
    );
    assert_eq!(
        line,
        "{\"alpha\":null,\"bytes\":345,\"flags\":\"-\",\"lit\":\"plain\",\"mid\":\"code=200 -\",\"sni\":null,\"start\":\"2026-12-03T13:34:47.104Z\",\"ua\":\"cur\",\"ust\":\"7\",\"zeta\":200}\n"
    );
}

#[test]
fn json_escapes_strings_and_writes_nested_objects_and_constants() {
    let mut log = http_log();
    log.user_agent = Some(HeaderValue::from_static("a\"b\\c"));
    let nested = PbValue {
        kind: Some(Kind::StructValue(Struct {
            fields: [
                (
                    "b".to_string(),
                    PbValue {
                        kind: Some(Kind::StringValue("lit".into())),
                    },
                ),
                (
                    "a".to_string(),
                    PbValue {
                        kind: Some(Kind::StringValue("%RESPONSE_CODE%".into())),
                    },
                ),
            ]
            .into(),
        })),
    };
    let constants = [
        ("num", Kind::NumberValue(5.0)),
        ("half", Kind::NumberValue(5.5)),
        ("yes", Kind::BoolValue(true)),
        ("nul", Kind::NullValue(0)),
        ("ua", Kind::StringValue("q\u{1}\n%REQ(USER-AGENT)%".into())),
    ];
    let mut fields: Struct = Struct {
        fields: constants
            .into_iter()
            .map(|(key, kind)| (key.to_string(), PbValue { kind: Some(kind) }))
            .collect(),
    };
    fields.fields.insert("nested".into(), nested);
    let format = LogFormat::Json(json_object(&fields).unwrap());
    let (mut out, mut scratch) = (String::new(), String::new());
    log.render(&format, &mut out, &mut scratch);
    assert_eq!(
        out,
        "{\"half\":\"5.5\",\"nested\":{\"a\":200,\"b\":\"lit\"},\"nul\":null,\"num\":5,\"ua\":\"q\\u0001\\na\\\"b\\\\c\",\"yes\":true}\n"
    );
}

#[test]
fn json_of_a_tcp_connection() {
    let line = json(
        &tcp_log(),
        &[
            ("method", "%REQ(:METHOD)%"),
            ("protocol", "%PROTOCOL%"),
            ("response_code", "%RESPONSE_CODE%"),
            ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
            ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"),
            ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
        ],
    );
    assert_eq!(
        line,
        "{\"downstream_local_address\":\"93.184.216.34:443\",\"method\":null,\"protocol\":null,\"response_code\":0,\"response_code_details\":null,\"upstream_cluster\":\"BlackHoleCluster\"}\n"
    );
}

#[test]
fn code_details_carry_the_transport_failure_reason_for_the_grpc_entry() {
    let mut log = http_log();
    log.response_code_details = "upstream_reset_before_response_started{connection_failure}";
    log.transport_failure_reason = "tls error".into();
    assert_eq!(
        log.code_details(),
        "upstream_reset_before_response_started{connection_failure|tls_error}"
    );
    log.response_code_details = "via_upstream";
    assert_eq!(log.code_details(), "via_upstream");
}

#[test]
fn the_explicit_proxys_loggers_write_istios_line_to_stdout() {
    let loggers = super::istio_stdout();
    assert_eq!(loggers.len(), 1);
    assert_eq!(
        *loggers[0].format,
        LogFormat::Text(TextFormat::parse(ISTIO_TEXT_FORMAT).unwrap())
    );
}

#[test]
fn a_path_opened_again_is_the_same_sink_on_a_file_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let path_text = path.to_str().unwrap();
    let first = super::sink::open(path_text).unwrap();
    first.push(b"first\n");
    super::flush();
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    let second = super::sink::open(path_text).unwrap();
    assert!(std::ptr::eq(first, second), "one sink per path");
    second.push(b"second\n");
    super::flush();
    assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "first\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
}
