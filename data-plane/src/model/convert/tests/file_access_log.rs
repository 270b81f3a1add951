//! File and stdout access loggers: `/dev/stdout` in Istio's text format
//! (or Envoy's default) is written; another path, a JSON format, a custom
//! format, an operator without a value and another logger are refused by
//! name.

use proto::pb::envoy::config::core::v3::{
    DataSource, SubstitutionFormatString, data_source, substitution_format_string,
};
use proto::pb::envoy::extensions::access_loggers::file::v3::{FileAccessLog, file_access_log};
use proto::wkt::Struct;
use shared::access_log::ISTIO_TEXT_FORMAT;

use super::access_log::{convert, http_listener, http_manager, logger};
use super::assert_rejected;
use crate::model::convert::access_log::FILE;

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

#[test]
fn istios_file_logger_to_stdout_writes_the_line() {
    for config in [
        file("/dev/stdout", Some(text(ISTIO_TEXT_FORMAT))),
        file("/dev/stdout", None),
    ] {
        let manager = http_manager(&http_listener(vec![logger(FILE, &config)]));
        assert!(manager.access_log);
    }
}

#[test]
fn another_path_is_refused() {
    rejected(
        &file("/var/log/proxy.log", Some(text(ISTIO_TEXT_FORMAT))),
        ".path",
        "the agent writes its access log to /dev/stdout only, not \"/var/log/proxy.log\"",
    );
}

#[test]
fn a_json_format_is_refused() {
    let json = substitution_format_string::Format::JsonFormat(Struct::default());
    rejected(
        &file("/dev/stdout", Some(json)),
        ".log_format.json_format",
        "the agent writes Istio's text line only: JSON access logs (accessLogEncoding JSON) are not rendered",
    );
}

#[test]
fn operators_without_a_value_are_named() {
    rejected(
        &file(
            "/dev/stdout",
            Some(text(
                "%RESPONSE_CODE% %REQ(X-B3-TRACEID)% %FILTER_STATE(a)%\n",
            )),
        ),
        ".log_format",
        "command operators the agent cannot render: %REQ(X-B3-TRACEID)%, %FILTER_STATE(a)%",
    );
    rejected(
        &file("/dev/stdout", Some(text("%RESPONSE_CODE% %DURATION%\n"))),
        ".log_format",
        "the agent writes Istio's text line only: a custom accessLogFormat is not rendered",
    );
    rejected(
        &file("/dev/stdout", Some(text("100% %DURATION%"))),
        ".log_format",
        "a '%' at byte 3 starts no command operator (a literal % is %%)",
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
        "access logger type.googleapis.com/envoy.extensions.access_loggers.fluentd.v3.FluentdAccessLogConfig is not supported: the agent writes file (/dev/stdout), stdout and gRPC access logs",
    );
}
