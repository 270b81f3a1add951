//! File, stdout and stderr loggers: each compiles its format (Envoy's
//! default when none) and opens its path; a path the agent cannot open, an
//! operator it cannot render, a malformed format, a filter and another
//! logger are refused by name.

use proto::pb::envoy::config::accesslog::v3::AccessLogFilter;
use proto::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use proto::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use proto::pb::envoy::extensions::access_loggers::stream::v3::StderrAccessLog;
use shared::access_log::ISTIO_TEXT_FORMAT;

use super::access_log::{convert, http_listener, http_manager, logger};
use super::assert_rejected;
use crate::model::convert::access_log::{FILE, STDERR};
use crate::model::log_format::{ENVOY_DEFAULT_FORMAT, LogFormat, TextFormat, json_object};
use crate::model::proto_fixtures::json_format as json;

const AT: &str = "filter_chains[0].http_connection_manager.access_log[0].typed_config";

fn text(format: &str) -> substitution_format_string::Format {
    substitution_format_string::Format::TextFormatSource(DataSource {
        specifier: Some(data_source::Specifier::InlineString(format.into())),
        ..Default::default()
    })
}

fn file(path: &str, format: Option<substitution_format_string::Format>) -> FileAccessLog {
    FileAccessLog {
        path: path.into(),
        access_log_format: format.map(|format| {
            file_access_log::AccessLogFormat::LogFormat(SubstitutionFormatString {
                format: Some(format),
                ..Default::default()
            })
        }),
    }
}

fn rejected(config: &FileAccessLog, field: &str, reason: &str) {
    assert_rejected(
        convert(&http_listener(vec![logger(FILE, config)])),
        "listener",
        "0.0.0.0_80",
        &format!("{AT}{field}"),
        reason,
    );
}

fn text_format(format: &str) -> LogFormat {
    LogFormat::Text(TextFormat::parse(format).unwrap())
}

#[test]
fn istios_logger_to_stdout_and_envoys_default_are_compiled() {
    let istio = http_manager(&http_listener(vec![logger(
        FILE,
        &file("/dev/stdout", Some(text(ISTIO_TEXT_FORMAT))),
    )]));
    assert_eq!(
        *istio.file_access_logs[0].format,
        text_format(ISTIO_TEXT_FORMAT)
    );
    let default = http_manager(&http_listener(vec![logger(
        FILE,
        &file("/dev/stdout", None),
    )]));
    assert_eq!(
        *default.file_access_logs[0].format,
        text_format(ENVOY_DEFAULT_FORMAT)
    );
    assert!(
        std::ptr::eq(
            istio.file_access_logs[0].sink,
            default.file_access_logs[0].sink
        ),
        "one sink per path"
    );
}

#[test]
fn a_file_path_is_opened_for_append_and_several_loggers_are_kept_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.log");
    std::fs::write(&path, "earlier\n").unwrap();
    let json_fields = json(&[
        ("code", "%RESPONSE_CODE%"),
        ("authority", "%REQ(:AUTHORITY)%"),
    ]);
    let manager = http_manager(&http_listener(vec![
        logger(
            FILE,
            &file(
                path.to_str().unwrap(),
                Some(substitution_format_string::Format::JsonFormat(
                    json_fields.clone(),
                )),
            ),
        ),
        logger(FILE, &file("/dev/stdout", Some(text("%RESPONSE_CODE%\n")))),
        logger(STDERR, &StderrAccessLog::default()),
    ]));
    let formats: Vec<&LogFormat> = manager
        .file_access_logs
        .iter()
        .map(|logger| &*logger.format)
        .collect();
    assert_eq!(
        formats,
        [
            &LogFormat::Json(json_object(&json_fields).unwrap()),
            &text_format("%RESPONSE_CODE%\n"),
            &text_format(ENVOY_DEFAULT_FORMAT),
        ]
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier\n");
}

#[test]
fn a_path_the_agent_cannot_open_is_refused() {
    rejected(
        &file("/nonexistent-dir/proxy.log", Some(text(ISTIO_TEXT_FORMAT))),
        ".path",
        "cannot open \"/nonexistent-dir/proxy.log\" for append: No such file or directory (os error 2)",
    );
    rejected(&file("", None), ".path", "a path is required");
}

#[test]
fn operators_the_agent_cannot_render_are_named() {
    rejected(
        &file(
            "/dev/stdout",
            Some(text("%RESPONSE_CODE% %REQ(X-B3-TRACEID)%\n")),
        ),
        ".log_format",
        "the agent keeps no request header x-b3-traceid: cannot render %REQ(X-B3-TRACEID)%",
    );
    rejected(
        &file("/dev/stdout", Some(text("%FILTER_STATE(a)%\n"))),
        ".log_format",
        "the agent cannot render command operator %FILTER_STATE%",
    );
    let in_json = json(&[("trace", "%REQ(X-B3-TRACEID)%")]);
    rejected(
        &file(
            "/dev/stdout",
            Some(substitution_format_string::Format::JsonFormat(in_json)),
        ),
        ".log_format.json_format",
        "trace: the agent keeps no request header x-b3-traceid: cannot render %REQ(X-B3-TRACEID)%",
    );
}

#[test]
fn formats_envoy_refuses_are_refused() {
    rejected(
        &file("/dev/stdout", Some(text("100% %DURATION%"))),
        ".log_format",
        "a '%' at byte 3 starts no command operator (a literal % is %%)",
    );
    rejected(
        &file("/dev/stdout", Some(text("%RESPONSE_CODE:2%"))),
        ".log_format",
        "RESPONSE_CODE does not take any parameters or length",
    );
}

#[test]
fn a_file_logger_with_a_filter_is_refused() {
    let mut log = logger(FILE, &file("/dev/stdout", None));
    log.filter = Some(AccessLogFilter::default());
    assert_rejected(
        convert(&http_listener(vec![log])),
        "listener",
        "0.0.0.0_80",
        "filter_chains[0].http_connection_manager.access_log[0].filter",
        "access log filters are not supported: every entry is logged",
    );
}

#[test]
fn another_logger_is_refused() {
    let type_url =
        "type.googleapis.com/envoy.extensions.access_loggers.fluentd.v3.FluentdAccessLogConfig";
    assert_rejected(
        convert(&http_listener(vec![logger(
            type_url,
            &proto::wkt::Empty {},
        )])),
        "listener",
        "0.0.0.0_80",
        AT,
        "access logger type.googleapis.com/envoy.extensions.access_loggers.fluentd.v3.FluentdAccessLogConfig is not supported: the agent writes file, stdout, stderr and gRPC access logs",
    );
}
