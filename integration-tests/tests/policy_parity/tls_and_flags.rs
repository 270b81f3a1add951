//! Scenarios on the edges of a request: TLS origination's server checks
//! (`subjectAltNames`, `insecureSkipVerify`), a DNS name without
//! addresses, the idle timeout of a TCP connection, the `server` header.

use std::path::Path;
use std::time::Duration;

use integration_tests::policy::{Call, Facts, Ready, Scenario, at_least};
use serde_json::json;

use crate::config::{cluster, destination_rule, http_service, ready, service};

/// The name the `tls` server's certificate is for.
pub const TLS_HOST: &str = "tls.example.com";

/// The scenarios; `other_ca_cert` is a CA that did not sign the `tls`
/// server's certificate.
pub fn scenarios(ca_cert: &Path, other_ca_cert: &Path) -> Vec<Scenario> {
    vec![
        subject_alt_names_mismatch(ca_cert),
        another_ca(other_ca_cert),
        insecure_skip_verify(ca_cert),
        auto_sni(ca_cert),
        auto_san_validation_mismatch(ca_cert),
        dns_without_addresses(),
        tcp_idle_timeout(),
        server_header(),
        normalize_path(),
    ]
}

/// Envoy's 503 body once istiod's default retries of a failed TLS
/// handshake are spent.
const TLS_FAILURE_BODY: &str = "upstream connect error or disconnect/reset before headers. \
     retried and the latest reset reason: remote connection failure";

/// TLS origination (SIMPLE) to the `tls` server, trusting the test CA,
/// with `extra` settings.
fn originate_tls(ca_cert: &Path, extra: serde_json::Value) -> Vec<(String, String)> {
    let mut tls = json!({
        "mode": "SIMPLE",
        "sni": TLS_HOST,
        "caCertificates": ca_cert.display().to_string(),
    });
    if let (Some(tls), Some(extra)) = (tls.as_object_mut(), extra.as_object()) {
        tls.extend(extra.clone());
    }
    vec![
        http_service(TLS_HOST, &["tls"]),
        destination_rule(TLS_HOST, json!({ "tls": tls })),
    ]
}

/// `subjectAltNames` the server's certificate does not carry: each
/// handshake fails verification (counted in `ssl.fail_verify_san`), and
/// after istiod's default retries on connect-failure (two) the app gets
/// Envoy's 503 for a remote connection failure, flagged UF and URX.
fn subject_alt_names_mismatch(ca_cert: &Path) -> Scenario {
    Scenario::new(
        "DR tls subjectAltNames mismatch",
        originate_tls(ca_cert, json!({ "subjectAltNames": ["other.example.com"] })),
        |probe| {
            let reply = probe.send(&Call::get(TLS_HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("log", probe.log().join("; "))
                .with(
                    "ssl.fail_verify_san",
                    probe.cluster_stat(&cluster(TLS_HOST), "ssl.fail_verify_san")?,
                ))
        },
        Facts::new()
            .with("status", 503)
            .with("body", TLS_FAILURE_BODY)
            .with("log", "503 URX,UF")
            .with("ssl.fail_verify_san", 3),
    )
    .ready(ready(TLS_HOST, 1))
}

/// TLS origination trusting a CA that did not sign the server's
/// certificate: each handshake fails the chain check, and after istiod's
/// default retries the app gets Envoy's 503 for a remote connection
/// failure (UF, URX); the access log's upstream transport failure reason
/// names BoringSSL's `CERTIFICATE_VERIFY_FAILED`, and each handshake counts
/// in `ssl.fail_verify_error`.
fn another_ca(other_ca_cert: &Path) -> Scenario {
    Scenario::new(
        "DR tls caCertificates of another CA: CERTIFICATE_VERIFY_FAILED",
        originate_tls(other_ca_cert, json!({})),
        |probe| {
            let reply = probe.send(&Call::get(TLS_HOST, "/"))?;
            let reasons = probe.transport_failure_reasons();
            Ok(Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("log", probe.log().join("; "))
                .with(
                    "transport failure reason names CERTIFICATE_VERIFY_FAILED",
                    reasons
                        .iter()
                        .all(|reason| reason.contains("CERTIFICATE_VERIFY_FAILED"))
                        && !reasons.is_empty(),
                )
                .with(
                    "ssl.fail_verify_error",
                    probe.cluster_stat(&cluster(TLS_HOST), "ssl.fail_verify_error")?,
                ))
        },
        Facts::new()
            .with("status", 503)
            .with("body", TLS_FAILURE_BODY)
            .with("log", "503 URX,UF")
            .with(
                "transport failure reason names CERTIFICATE_VERIFY_FAILED",
                true,
            )
            .with("ssl.fail_verify_error", 3),
    )
    .ready(ready(TLS_HOST, 1))
}

/// The same mismatch with `insecureSkipVerify: true`: nothing is checked,
/// the request is served.
fn insecure_skip_verify(ca_cert: &Path) -> Scenario {
    Scenario::new(
        "DR tls insecureSkipVerify",
        originate_tls(
            ca_cert,
            json!({ "subjectAltNames": ["other.example.com"], "insecureSkipVerify": true }),
        ),
        |probe| {
            let reply = probe.send(&Call::get(TLS_HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("served by", reply.served_by())
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 200)
            .with("served by", "tls")
            .with("log", "200 -"),
    )
    .ready(vec![
        Ready::endpoints(cluster(TLS_HOST), 1),
        Ready::lacks(cluster(TLS_HOST), "other.example.com"),
    ])
}

/// Envoy's connection manager names itself on every response: a sidecar's
/// (istiod sets no `server_name`) says `server: envoy` in place of the
/// upstream's own.
fn server_header() -> Scenario {
    const HOST: &str = "server-header.example.com";
    Scenario::new(
        "HCM server header",
        vec![http_service(HOST, &["a"])],
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("server", reply.header_or_dash("server")))
        },
        Facts::new().with("status", 200).with("server", "envoy"),
    )
    .ready(ready(HOST, 1))
}

/// istiod's connection managers normalize paths (`normalize_path`, the
/// mesh's default `pathNormalization`): dot segments, escaped dots
/// included, are resolved before routing and the upstream gets the result;
/// an escaped NUL is refused with a 400.
fn normalize_path() -> Scenario {
    const HOST: &str = "paths.example.com";
    Scenario::new(
        "HCM normalize_path",
        vec![http_service(HOST, &["a"])],
        |probe| {
            let dots = probe.send(&Call::get(HOST, "/a/./b/../c").path_as_is())?;
            let escaped = probe.send(&Call::get(HOST, "/a/%2e%2E/d?x=/../y").path_as_is())?;
            let nul = probe.send(&Call::get(HOST, "/a/%00").path_as_is())?;
            let paths: Vec<String> = probe
                .received("a")?
                .into_iter()
                .map(|request| request.path)
                .collect();
            Ok(Facts::new()
                .with(
                    "statuses",
                    format!("{} {} {}", dots.status, escaped.status, nul.status),
                )
                .with("paths upstream", paths.join(" "))
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("statuses", "200 200 400")
            .with("paths upstream", "/a/c /d?x=/../y")
            .with("log", "200 -; 200 -; 400 -"),
    )
    .ready(ready(HOST, 1))
}

/// SIMPLE without `sni` or `subjectAltNames`, as istiod writes it:
/// `auto_sni` sends the request's host as SNI and `auto_san_validation`
/// checks the certificate holds it (the endpoint is an IP address).
fn auto_sni(ca_cert: &Path) -> Scenario {
    Scenario::new(
        "DR tls SIMPLE without sni (auto_sni)",
        originate_tls(ca_cert, json!({ "sni": null })),
        |probe| {
            let reply = probe.send(&Call::get(TLS_HOST, "/"))?;
            let sni = probe
                .received("tls")?
                .first()
                .and_then(|request| request.sni.clone())
                .unwrap_or_else(|| "-".to_string());
            Ok(Facts::new()
                .with("status", reply.result())
                .with("served by", reply.served_by())
                .with("SNI the server saw", sni)
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 200)
            .with("served by", "tls")
            .with("SNI the server saw", TLS_HOST)
            .with("log", "200 -"),
    )
    .ready(ready(TLS_HOST, 1))
}

/// The name a ServiceEntry gives the `tls` server that its certificate
/// does not hold.
const ALIAS_HOST: &str = "alias.example.com";

/// SIMPLE without `sni` to a host the certificate does not name:
/// `auto_san_validation` refuses the handshake (the chain is trusted),
/// and after istiod's default retries the app gets Envoy's 503, UF URX.
fn auto_san_validation_mismatch(ca_cert: &Path) -> Scenario {
    Scenario::new(
        "DR tls SIMPLE without sni, host not in the certificate",
        vec![
            http_service(ALIAS_HOST, &["tls"]),
            destination_rule(
                ALIAS_HOST,
                json!({ "tls": {
                    "mode": "SIMPLE",
                    "caCertificates": ca_cert.display().to_string(),
                } }),
            ),
        ],
        |probe| {
            let reply = probe.send(&Call::get(ALIAS_HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 503)
            .with("body", TLS_FAILURE_BODY)
            .with("log", "503 URX,UF"),
    )
    .ready(ready(ALIAS_HOST, 1))
}

/// A `resolution: DNS` service whose name has no addresses: no host to
/// send to, Envoy's 503 `no healthy upstream`, flag UH.
fn dns_without_addresses() -> Scenario {
    const HOST: &str = "nowhere.example.com";
    let entry = format!(
        "apiVersion: networking.istio.io/v1\n\
         kind: ServiceEntry\n\
         metadata:\n  name: nowhere\n\
         spec:\n\
         \x20 hosts:\n  - {HOST}\n\
         \x20 location: MESH_EXTERNAL\n\
         \x20 ports:\n  - number: 80\n    name: http\n    protocol: HTTP\n\
         \x20 resolution: DNS\n"
    );
    Scenario::new(
        "DNS name without addresses",
        vec![("se-nowhere.yaml".to_string(), entry)],
        |probe| {
            let reply = probe.send(&Call::get(HOST, "/"))?;
            Ok(Facts::new()
                .with("status", reply.result())
                .with("body", reply.body.trim())
                .with("log", probe.log().join("; ")))
        },
        Facts::new()
            .with("status", 503)
            .with("body", "no healthy upstream")
            .with("log", "503 UH"),
    )
    .ready(vec![Ready::has("80", HOST)])
}

/// The lower bound of a 2 s idle timeout as the app can time it: less
/// the timers' millisecond rounding.
const IDLE_BOUND: Duration = Duration::from_millis(1990);

/// `connectionPool.tcp.idleTimeout: 2s` on a TCP service: a connection
/// that carries nothing is closed by the proxy, not before 2 s.
fn tcp_idle_timeout() -> Scenario {
    const HOST: &str = "tcp.example.com";
    const PORT: u16 = 9000;
    Scenario::new(
        "DR tcp.idleTimeout 2s",
        vec![
            service(HOST, PORT, "TCP", &["a"]),
            destination_rule(
                HOST,
                json!({ "connectionPool": { "tcp": { "idleTimeout": "2s" } } }),
            ),
        ],
        |probe| {
            let idle = probe.idle_until_closed(PORT, Duration::from_secs(15))?;
            Ok(Facts::new().with("closed after", at_least(idle, IDLE_BOUND)))
        },
        Facts::new().with("closed after", format!("≥ {IDLE_BOUND:?}")),
    )
    .ready(vec![
        Ready::endpoints(format!("outbound|{PORT}||{HOST}"), 1),
        Ready::has(format!("0.0.0.0_{PORT}"), HOST),
    ])
}
