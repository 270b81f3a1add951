//! What one run of a scenario produced, as far as Envoy and our agent must
//! agree, and how two such outcomes differ.

use std::collections::BTreeSet;

/// What the external server reports for its peer when the sidecar connected.
pub const SIDECAR: &str = "sidecar";
/// ...and when the egress gateway did.
pub const GATEWAY: &str = "gateway";

/// What one run of a scenario produced, as far as Envoy and our agent must
/// agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `HTTP <status>`, or `curl exit <code>` when curl got no response.
    pub(super) result: String,
    /// The body of a response other than 200 (what the proxy said), quoted.
    pub(super) error_body: String,
    /// The names of the `x-envoy-*` headers of a 200 response.
    pub(super) x_envoy: BTreeSet<String>,
    /// The decorator header the external server saw.
    pub(super) decorator: String,
    /// The SNI the external server saw.
    pub(super) sni: String,
    /// Whether the external server was shown a client certificate of the
    /// test CA: `yes`, or `-`.
    pub(super) client_cert: String,
    /// Who connected to the external server: [`SIDECAR`], [`GATEWAY`] or
    /// `-` when nothing reached it.
    pub(super) peer: String,
    /// The sidecar's access log for the request, a line each: its code,
    /// flags and where it went (see [`super::side`]).
    pub(super) sidecar_log: String,
    /// The gateway's, when the request went through one.
    pub(super) gateway_log: String,
}

impl Outcome {
    pub fn http(status: u16) -> Self {
        Self::new(format!("HTTP {status}"))
    }

    pub fn curl_exit(code: i32) -> Self {
        Self::new(format!("curl exit {code}"))
    }

    fn new(result: String) -> Self {
        Self {
            result,
            error_body: "-".into(),
            x_envoy: BTreeSet::new(),
            decorator: "-".into(),
            sni: "-".into(),
            client_cert: "-".into(),
            peer: "-".into(),
            sidecar_log: "-".into(),
            gateway_log: "-".into(),
        }
    }

    pub fn error_body(self, body: &str) -> Self {
        Self {
            error_body: format!("{body:?}"),
            ..self
        }
    }

    pub fn x_envoy(self, names: &[&str]) -> Self {
        Self {
            x_envoy: names.iter().map(ToString::to_string).collect(),
            ..self
        }
    }

    pub fn decorator(self, decorator: &str) -> Self {
        Self {
            decorator: decorator.into(),
            ..self
        }
    }

    pub fn sni(self, sni: &str) -> Self {
        Self {
            sni: sni.into(),
            ..self
        }
    }

    /// The external server was shown a client certificate of the test CA.
    pub fn client_cert(self) -> Self {
        Self {
            client_cert: "yes".into(),
            ..self
        }
    }

    pub fn peer(self, peer: &str) -> Self {
        Self {
            peer: peer.into(),
            ..self
        }
    }

    pub fn sidecar_log(self, log: &str) -> Self {
        Self {
            sidecar_log: log.into(),
            ..self
        }
    }

    pub fn gateway_log(self, log: &str) -> Self {
        Self {
            gateway_log: log.into(),
            ..self
        }
    }

    /// The sidecar reached the external server, and logged `log` (its code
    /// and flags) `-> external`.
    pub fn from_sidecar(self, log: &str) -> Self {
        self.peer(SIDECAR)
            .sidecar_log(&format!("{log} -> external"))
    }

    /// The request went through the egress gateway, which reached the
    /// external server: both logged `log` (code and flags), the sidecar
    /// `-> gateway`, the gateway `-> external`.
    pub fn through_gateway(self, log: &str) -> Self {
        self.peer(GATEWAY)
            .sidecar_log(&format!("{log} -> gateway"))
            .gateway_log(&format!("{log} -> external"))
    }

    /// The table's columns, in order.
    pub(super) fn columns(&self) -> [String; 9] {
        let x_envoy = if self.x_envoy.is_empty() {
            "-".to_string()
        } else {
            self.x_envoy.iter().cloned().collect::<Vec<_>>().join(",")
        };
        [
            self.result.clone(),
            self.error_body.clone(),
            x_envoy,
            self.decorator.clone(),
            self.sni.clone(),
            self.client_cert.clone(),
            self.peer.clone(),
            self.sidecar_log.clone(),
            self.gateway_log.clone(),
        ]
    }
}

pub(super) const COLUMNS: [&str; 9] = [
    "result",
    "error body",
    "x-envoy-* (200)",
    "decorator upstream",
    "SNI upstream",
    "client cert upstream",
    "upstream peer",
    "sidecar log",
    "gateway log",
];

/// Every field in which `outcome` differs from `reference`.
pub(super) fn differences(outcome: &Outcome, reference: &Outcome) -> Vec<String> {
    outcome
        .columns()
        .iter()
        .zip(reference.columns())
        .zip(COLUMNS)
        .filter(|((got, wanted), _)| *got != wanted)
        .map(|((got, wanted), column)| format!("{column}: {got:?} vs {wanted:?}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_column_that_differs() {
        let expected = Outcome::http(200)
            .peer(SIDECAR)
            .sidecar_log("200 - -> external");
        assert!(differences(&expected, &expected).is_empty());
        let got = Outcome::http(503)
            .error_body("no healthy upstream")
            .sidecar_log("200 - -> external");
        let columns: Vec<String> = differences(&got, &expected)
            .iter()
            .map(|difference| difference.split(':').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(columns, ["result", "error body", "upstream peer"]);
        assert_eq!(
            differences(&got, &expected)[0],
            r#"result: "HTTP 503" vs "HTTP 200""#
        );
    }

    #[test]
    fn columns_show_a_dash_for_nothing_and_sorted_header_names() {
        let outcome = Outcome::curl_exit(35).x_envoy(&["x-envoy-b", "x-envoy-a"]);
        assert_eq!(
            outcome.columns(),
            [
                "curl exit 35",
                "-",
                "x-envoy-a,x-envoy-b",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-"
            ]
        );
    }
}
