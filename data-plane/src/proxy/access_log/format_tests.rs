//! Rendering Istio's JSON format and custom text formats as Envoy does.

use std::time::{Duration, SystemTime};

use http::uri::PathAndQuery;
use http::{HeaderValue, Method};
use shared::access_log::{ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT};

use super::*;

/// 2026-01-02T03:04:05.678Z
fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_767_323_045_678)
}

fn http_entry() -> AccessLog {
    let mut log = AccessLog::new(
        "HTTP/1.1",
        Some("10.0.0.1:80".parse().unwrap()),
        Some("10.0.0.2:5555".parse().unwrap()),
    );
    log.start_time = at();
    log.method = Some(Method::GET);
    log.path = Some(PathAndQuery::from_static("/headers?a=b"));
    log.response_code = 200;
    log.response_code_details = "via_upstream";
    log.bytes_sent = 321;
    log.upstream_service_time = Some(7);
    log.authority = Some(HeaderValue::from_static("httpbin.org"));
    log.user_agent = Some(HeaderValue::from_static("curl \"8\""));
    log.upstream_cluster = Some("outbound|80||httpbin.org".into());
    log.upstream_host = Some("127.0.0.1:8080".parse().unwrap());
    log.route_name = Some("default".into());
    log
}

fn tcp_entry() -> AccessLog {
    let mut log = AccessLog::new(
        "-",
        Some("93.184.216.34:443".parse().unwrap()),
        Some("10.0.0.2:5555".parse().unwrap()),
    );
    log.start_time = at();
    log.response_flags = "UH";
    log.bytes_received = 12;
    log.upstream_cluster = Some("BlackHoleCluster".into());
    log.requested_server_name = Some("blocked.example".into());
    log
}

fn render(format: &Format, log: &AccessLog) -> String {
    let mut out = String::new();
    format.render(log, &mut out);
    out
}

#[tokio::test(start_paused = true)]
async fn istios_json_format_keeps_numbers_and_nulls_as_envoy() {
    let format = Format::json(ISTIO_JSON_FORMAT.iter().copied()).unwrap();
    assert_eq!(
        render(&format, &http_entry()),
        concat!(
            r#"{"start_time":"2026-01-02T03:04:05.678Z","route_name":"default","method":"GET","#,
            r#""path":"/headers?a=b","protocol":"HTTP/1.1","response_code":200,"#,
            r#""response_flags":null,"response_code_details":"via_upstream","#,
            r#""connection_termination_details":null,"bytes_received":0,"bytes_sent":321,"#,
            r#""duration":0,"upstream_service_time":"7","x_forwarded_for":null,"#,
            r#""user_agent":"curl \"8\"","request_id":null,"authority":"httpbin.org","#,
            r#""upstream_host":"127.0.0.1:8080","upstream_cluster":"outbound|80||httpbin.org","#,
            r#""upstream_local_address":null,"downstream_local_address":"10.0.0.1:80","#,
            r#""downstream_remote_address":"10.0.0.2:5555","requested_server_name":null,"#,
            r#""upstream_transport_failure_reason":null}"#,
            "\n"
        )
    );
    assert_eq!(
        render(&format, &tcp_entry()),
        concat!(
            r#"{"start_time":"2026-01-02T03:04:05.678Z","route_name":null,"method":null,"#,
            r#""path":null,"protocol":null,"response_code":0,"response_flags":"UH","#,
            r#""response_code_details":null,"connection_termination_details":null,"#,
            r#""bytes_received":12,"bytes_sent":0,"duration":0,"upstream_service_time":null,"#,
            r#""x_forwarded_for":null,"user_agent":null,"request_id":null,"authority":null,"#,
            r#""upstream_host":null,"upstream_cluster":"BlackHoleCluster","#,
            r#""upstream_local_address":null,"downstream_local_address":"93.184.216.34:443","#,
            r#""downstream_remote_address":"10.0.0.2:5555","#,
            r#""requested_server_name":"blocked.example","#,
            r#""upstream_transport_failure_reason":null}"#,
            "\n"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_json_value_mixing_text_and_operators_is_a_string() {
    let format = Format::json([("line", "%RESPONSE_CODE% in %DURATION%ms")]).unwrap();
    assert_eq!(
        render(&format, &http_entry()),
        "{\"line\":\"200 in 0ms\"}\n"
    );
}

#[tokio::test(start_paused = true)]
async fn a_custom_text_format_renders_its_operators() {
    let format = Format::text(
        "%REQ(:METHOD)% %REQ(:authority)%%REQ(:PATH):4% %RESPONSE_CODE% %BYTES_SENT% 100%% %UPSTREAM_CLUSTER% %REQUESTED_SERVER_NAME%",
    )
    .unwrap();
    assert_eq!(
        render(&format, &http_entry()),
        "GET httpbin.org/hea 200 321 100% outbound|80||httpbin.org -\n"
    );
    assert_eq!(
        render(&format, &tcp_entry()),
        "- -- 0 0 100% BlackHoleCluster blocked.example\n"
    );
}

#[tokio::test(start_paused = true)]
async fn istios_text_format_renders_as_the_fixed_line() {
    let format = Format::text(ISTIO_TEXT_FORMAT).unwrap();
    let log = http_entry();
    let mut fixed = log.format();
    fixed.push('\n');
    // The fixed line adds the peer identity and the egress mark.
    assert_eq!(render(&format, &log), fixed.replace(" - -\n", "\n"));
}

#[test]
fn unknown_operators_are_refused_by_name() {
    let refused = Format::text("%REQ(X-B3-TRACEID)% %FILTER_STATE(x)% %DURATION%").unwrap_err();
    assert_eq!(
        refused,
        "command operators the agent cannot render: %REQ(X-B3-TRACEID)%, %FILTER_STATE(x)%"
    );
    let refused = Format::json([("ok", "%DURATION%"), ("trace", "%TRACE_ID%")]).unwrap_err();
    assert_eq!(
        refused,
        "trace: command operators the agent cannot render: %TRACE_ID%"
    );
    assert!(Format::text("100% sure").is_err());
}

#[test]
fn tokens_keep_literals_between_operators() {
    assert_eq!(
        tokens("a%%b%DURATION%c").unwrap(),
        vec![
            Token::Literal("a%b".into()),
            Token::Operator(Operator {
                name: "DURATION".into(),
                argument: None,
                max_length: None
            }),
            Token::Literal("c".into()),
        ]
    );
}
