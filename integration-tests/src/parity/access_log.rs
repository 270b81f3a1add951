//! A proxy's access log lines in the few fields that Envoy's default
//! format and Istio's (the agent's) share.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::GATEWAY;

/// `<code> <flags> -> <upstream>` for each access log line, the
/// upstream being `external` (a server on port 80 or 443 of `host`),
/// `gateway` (the egress gateway, reached at `gateway`) or `-` (none):
/// fields that Envoy's default format and Istio's, the agent's, both have:
/// the two after the quoted request line, and the last quoted address.
pub(super) fn summary(lines: &[String], host: Ipv4Addr, gateway: Option<Ipv4Addr>) -> String {
    if lines.is_empty() {
        return "none".to_string();
    }
    let host = IpAddr::V4(host);
    let gateway = gateway.map(IpAddr::V4);
    lines
        .iter()
        .map(|line| {
            let quoted: Vec<&str> = line.split('"').collect();
            let upstream = quoted
                .iter()
                .skip(1)
                .step_by(2)
                .filter_map(|field| field.parse::<SocketAddr>().ok())
                .next_back();
            let upstream = match upstream {
                None => "-".to_string(),
                Some(addr) if addr.ip() == host && [80, 443].contains(&addr.port()) => {
                    "external".to_string()
                }
                Some(addr) if Some(addr.ip()) == gateway => GATEWAY.to_string(),
                Some(addr) => addr.to_string(),
            };
            format!("{} -> {upstream}", code_and_flags(line))
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    fn no_line_is_none_and_another_host_is_its_address() {
        assert_eq!(summary(&[], HOST, None), "none");
        let line = r#"[t] "GET / HTTP/1.1" 502 - 0 0 0 - "10.0.0.9:80""#;
        assert_eq!(
            summary(&[line.into()], HOST, Some(GATEWAY_IP)),
            "502 - -> 10.0.0.9:80"
        );
    }
}
