//! The file access log as istiod writes it from MeshConfig.

use proto::pb::envoy::config::listener::v3::{Filter, FilterChain};

use super::*;
use crate::config::load::parse_mesh;
use crate::translate::filters::{self, TcpTarget};

fn mesh(yaml: &str) -> MeshConfig {
    parse_mesh(std::path::Path::new("mesh.yaml"), yaml).expect("a valid mesh")
}

fn file_log(log: &AccessLog) -> FileAccessLog {
    assert_eq!(log.name, "envoy.access_loggers.file");
    let Some(access_log::ConfigType::TypedConfig(any)) = &log.config_type else {
        panic!("a typed config");
    };
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
    );
    FileAccessLog::decode(any.value.as_slice()).unwrap()
}

fn format(file: &FileAccessLog) -> &substitution_format_string::Format {
    let Some(file_access_log::AccessLogFormat::LogFormat(format)) = &file.access_log_format else {
        panic!("log_format is set");
    };
    format.format.as_ref().expect("a format")
}

#[test]
fn an_empty_access_log_file_means_no_logger() {
    assert!(file_access_log(&mesh("accessLogFile: \"\"\n")).is_none());
}

#[test]
fn text_is_istios_format_unless_the_mesh_gives_one() {
    let file = file_log(&file_access_log(&mesh("accessLogFile: /dev/stdout\n")).unwrap());
    assert_eq!(file.path, "/dev/stdout");
    let substitution_format_string::Format::TextFormatSource(DataSource {
        specifier: Some(data_source::Specifier::InlineString(text)),
        ..
    }) = format(&file)
    else {
        panic!("an inline text format");
    };
    assert!(text.starts_with("[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%"));
    assert!(text.ends_with("%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"));
    let custom = mesh(
        "accessLogFile: /var/log/proxy.log\naccessLogFormat: \"%RESPONSE_CODE% %REQ(:AUTHORITY)%\\n\"\n",
    );
    let file = file_log(&file_access_log(&custom).unwrap());
    assert_eq!(file.path, "/var/log/proxy.log");
    assert!(matches!(
        format(&file),
        substitution_format_string::Format::TextFormatSource(DataSource {
            specifier: Some(data_source::Specifier::InlineString(text)),
            ..
        }) if text == "%RESPONSE_CODE% %REQ(:AUTHORITY)%\n"
    ));
}

#[test]
fn json_is_istios_fields_unless_the_mesh_gives_an_object() {
    let file = file_log(
        &file_access_log(&mesh(
            "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\n",
        ))
        .unwrap(),
    );
    let substitution_format_string::Format::JsonFormat(fields) = format(&file) else {
        panic!("a JSON format");
    };
    assert_eq!(fields.fields.len(), 24, "istiod's EnvoyJSONLogFormatIstio");
    assert_eq!(
        fields.fields["upstream_cluster"].kind,
        Some(Kind::StringValue("%UPSTREAM_CLUSTER_RAW%".into()))
    );
    let custom = mesh(
        "accessLogFile: /dev/stdout\naccessLogEncoding: JSON\naccessLogFormat: '{\"code\": \"%RESPONSE_CODE%\", \"host\": \"%REQ(:AUTHORITY)%\"}'\n",
    );
    let file = file_log(&file_access_log(&custom).unwrap());
    let substitution_format_string::Format::JsonFormat(fields) = format(&file) else {
        panic!("a JSON format");
    };
    let mut keys: Vec<&String> = fields.fields.keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "host"], "only the mesh's fields");
}

#[test]
fn a_json_format_that_is_not_an_object_is_refused_naming_the_field() {
    for format in ["foo", "'[]'", "'\"{}\"'"] {
        let yaml = format!("accessLogEncoding: JSON\naccessLogFormat: {format}\n");
        let errors = parse_mesh(std::path::Path::new("mesh.yaml"), &yaml).unwrap_err();
        let text = errors.to_string();
        assert!(
            text.contains("accessLogFormat") && text.contains("JSON object"),
            "{text}"
        );
    }
}

#[test]
fn the_logger_goes_first_on_every_connection_manager_and_tcp_proxy() {
    let log = file_access_log(&MeshConfig::default()).expect("stdout unless told otherwise");
    let hcm = filters::http_connection_manager("outbound_0.0.0.0_80", "80", Default::default());
    let tcp = filters::tcp_proxy("x", TcpTarget::Cluster("x".into()));
    let mut listeners = vec![Listener {
        filter_chains: vec![FilterChain {
            filters: vec![hcm],
            ..Default::default()
        }],
        default_filter_chain: Some(FilterChain {
            filters: vec![tcp],
            ..Default::default()
        }),
        ..Default::default()
    }];
    add_file_access_log(&mut listeners, &log);
    let typed = |filter: &Filter| match &filter.config_type {
        Some(filter::ConfigType::TypedConfig(any)) => any.clone(),
        _ => panic!("typed"),
    };
    let hcm = HttpConnectionManager::decode(
        typed(&listeners[0].filter_chains[0].filters[0])
            .value
            .as_slice(),
    )
    .unwrap();
    assert_eq!(hcm.access_log, vec![log.clone()]);
    let tcp = TcpProxy::decode(
        typed(&listeners[0].default_filter_chain.as_ref().unwrap().filters[0])
            .value
            .as_slice(),
    )
    .unwrap();
    assert_eq!(tcp.access_log, vec![log]);
}
