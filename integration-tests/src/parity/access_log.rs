//! A proxy's access log lines in the few fields that Envoy's default
//! format and Istio's (the agent's) share; a JSON line (MeshConfig
//! `accessLogEncoding: JSON`) in every field, by value or by type.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::{Map, Value};

use super::GATEWAY;

/// The fields of a JSON line that differ from run to run or machine to
/// machine (times, ids, ephemeral ports, curl's version and the echoed
/// headers' size), shown by type rather than by value. The upstream host
/// is summarized as in a text line.
const VARYING: &[&str] = &[
    "start_time",
    "bytes_sent",
    "duration",
    "upstream_service_time",
    "request_id",
    "user_agent",
    "upstream_local_address",
    "downstream_local_address",
    "downstream_remote_address",
    "upstream_host",
];

/// `<code> <flags> -> <upstream>` for each access log line, the
/// upstream being `external` (a server on port 80 or 443 of `host`),
/// `gateway` (the egress gateway, reached at `gateway`) or `-` (none):
/// fields that Envoy's default format and Istio's, the agent's, both have:
/// the two after the quoted request line, and the last quoted address. A
/// JSON line adds every one of its fields (see [`json_summary`]).
pub(super) fn summary(lines: &[String], host: Ipv4Addr, gateway: Option<Ipv4Addr>) -> String {
    if lines.is_empty() {
        return "none".to_string();
    }
    let host = IpAddr::V4(host);
    let gateway = gateway.map(IpAddr::V4);
    lines
        .iter()
        .map(|line| {
            if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) {
                return json_summary(&fields, host, gateway);
            }
            let quoted: Vec<&str> = line.split('"').collect();
            let upstream = quoted
                .iter()
                .skip(1)
                .step_by(2)
                .filter_map(|field| field.parse::<SocketAddr>().ok())
                .next_back();
            format!(
                "{} -> {}",
                code_and_flags(line),
                upstream_name(upstream, host, gateway)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `<code> <flags> -> <upstream> {<field>=<value>, ...}` of a JSON line:
/// every field in key order, by value, or by type where it varies from
/// run to run.
fn json_summary(fields: &Map<String, Value>, host: IpAddr, gateway: Option<IpAddr>) -> String {
    let text = |key: &str| match fields.get(key) {
        Some(Value::String(value)) => value.clone(),
        Some(Value::Number(value)) => value.to_string(),
        _ => "-".to_string(),
    };
    let upstream = fields
        .get("upstream_host")
        .and_then(Value::as_str)
        .and_then(|host| host.parse::<SocketAddr>().ok());
    let shown: Vec<String> = fields
        .iter()
        .map(|(key, value)| {
            if !VARYING.contains(&key.as_str()) {
                return format!("{key}={value}");
            }
            let kind = match value {
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            format!("{key}:{kind}")
        })
        .collect();
    format!(
        "{} {} -> {} {{{}}}",
        text("response_code"),
        text("response_flags"),
        upstream_name(upstream, host, gateway),
        shown.join(", ")
    )
}

/// Where a request went: `external` (a server on port 80 or 443 of
/// `host`), `gateway` (the egress gateway, reached at `gateway`), `-`
/// (nowhere) or another address.
fn upstream_name(upstream: Option<SocketAddr>, host: IpAddr, gateway: Option<IpAddr>) -> String {
    match upstream {
        None => "-".to_string(),
        Some(addr) if addr.ip() == host && [80, 443].contains(&addr.port()) => {
            "external".to_string()
        }
        Some(addr) if Some(addr.ip()) == gateway => GATEWAY.to_string(),
        Some(addr) => addr.to_string(),
    }
}

/// `<code> <flags>` of an access log line: the two fields after the
/// quoted request line, in Envoy's default format and Istio's alike.
pub(crate) fn code_and_flags(line: &str) -> String {
    let after_request = line.split('"').nth(2).unwrap_or_default();
    after_request
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `%UPSTREAM_TRANSPORT_FAILURE_REASON%` of an Istio-format line: its
/// second quoted field (`-` when none).
pub(crate) fn transport_failure_reason(line: &str) -> String {
    line.split('"').nth(3).unwrap_or("-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 6);

    #[test]
    fn istio_and_envoy_lines_give_code_flags_and_upstream() {
        let istio = r#"[2026-01-01T00:00:00.000Z] "GET /politics HTTP/1.1" 200 - via_upstream - "-" 0 5 3 2 "-" "curl/8" "id" "edition.cnn.com" "198.18.0.1:80" outbound|80||edition.cnn.com 198.18.0.2:40000 198.18.0.1:80 198.18.0.2:39999 - default"#;
        let envoy = r#"[2026-01-01T00:00:00.000Z] "- - -" 0 UH 0 0 0 - "-" "-" "-" "-" "-""#;
        let gateway = r#"[2026-01-01T00:00:00.000Z] "GET / HTTP/1.1" 200 - 0 5 3 2 "-" "curl/8" "id" "edition.cnn.com" "198.18.0.6:80""#;
        let lines = [istio.into(), envoy.into(), gateway.into()];
        assert_eq!(
            summary(&lines, HOST, Some(GATEWAY_IP)),
            "200 - -> external; 0 UH -> -; 200 - -> gateway"
        );
        assert_eq!(
            summary(&lines, HOST, None),
            "200 - -> external; 0 UH -> -; 200 - -> 198.18.0.6:80",
            "without a gateway, its address is just an address"
        );
    }

    #[test]
    fn the_transport_failure_reason_is_the_second_quoted_field() {
        let failed = r#"[t] "GET / HTTP/1.1" 503 URX,UF upstream_reset_before_response_started{remote_connection_failure} - "TLS_error:CERTIFICATE_VERIFY_FAILED" 0 91 5 - "-" "curl/8""#;
        assert_eq!(
            transport_failure_reason(failed),
            "TLS_error:CERTIFICATE_VERIFY_FAILED"
        );
        let served = r#"[t] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 5 3 2 "-""#;
        assert_eq!(transport_failure_reason(served), "-");
    }

    #[test]
    fn a_json_line_shows_every_field_by_value_or_by_type() {
        let line = r#"{"start_time":"2026-01-01T00:00:00.000Z","response_code":200,"response_flags":"-","upstream_host":"198.18.0.1:80","duration":3,"request_id":"id","x_forwarded_for":null,"authority":"httpbin.org"}"#;
        assert_eq!(
            summary(&[line.into()], HOST, None),
            r#"200 - -> external {authority="httpbin.org", duration:number, request_id:string, response_code=200, response_flags="-", start_time:string, upstream_host:string, x_forwarded_for=null}"#
        );
    }

    #[test]
    fn no_line_is_none_and_another_host_is_its_address() {
        assert_eq!(summary(&[], HOST, None), "none");
        let line = r#"[t] "GET / HTTP/1.1" 502 - 0 0 0 - "10.0.0.9:80""#;
        assert_eq!(
            summary(&[line.into()], HOST, Some(GATEWAY_IP)),
            "502 - -> 10.0.0.9:80"
        );
    }
}
