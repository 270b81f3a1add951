//! Gateway server TLS checks: what each mode needs (a certificate, a CA for client certificates) and what this mesh cannot honour.

use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::{ServerTlsMode, ServerTlsSettings};

impl Check<'_> {
    /// The `tls` of server `field` (an HTTPS or TLS server).
    pub(super) fn server_tls(&mut self, field: &str, tls: &ServerTlsSettings) {
        let files = [
            ("serverCertificate", tls.server_certificate.is_some()),
            ("privateKey", tls.private_key.is_some()),
            ("caCertificates", tls.ca_certificates.is_some()),
        ];
        match tls.mode {
            ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual => {
                let mode = mode_name(tls.mode).to_string();
                if tls.credential_name.is_some() {
                    for (name, set) in files {
                        if set {
                            let problem = Problem::ServerTlsCredentialAndFiles { field: name };
                            self.report(format!("{field}.{name}"), problem);
                        }
                    }
                } else if tls.server_certificate.is_none() || tls.private_key.is_none() {
                    let problem = Problem::ServerTlsWithoutCertificate { mode };
                    self.report(format!("{field}.mode"), problem);
                } else if tls.mode != ServerTlsMode::Simple && tls.ca_certificates.is_none() {
                    let problem = Problem::ServerTlsWithoutCa { mode };
                    self.report(format!("{field}.caCertificates"), problem);
                }
            }
            ServerTlsMode::IstioMutual => {
                let credential = ("credentialName", tls.credential_name.is_some());
                for (name, set) in files.into_iter().chain([credential]) {
                    if set {
                        let problem = Problem::IstioMutualWithCredentials { field: name };
                        self.report(format!("{field}.{name}"), problem);
                    }
                }
            }
            ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough => {}
        }
        let unsupported = [
            ("subjectAltNames", !tls.subject_alt_names.is_empty()),
            ("minProtocolVersion", tls.min_protocol_version.is_some()),
            ("maxProtocolVersion", tls.max_protocol_version.is_some()),
        ];
        for (name, set) in unsupported {
            if set {
                let problem = Problem::ServerTlsFieldNotSupported { field: name };
                self.report(format!("{field}.{name}"), problem);
            }
        }
    }
}

/// A mode as Istio spells it.
fn mode_name(mode: ServerTlsMode) -> &'static str {
    match mode {
        ServerTlsMode::Passthrough => "PASSTHROUGH",
        ServerTlsMode::Simple => "SIMPLE",
        ServerTlsMode::Mutual => "MUTUAL",
        ServerTlsMode::AutoPassthrough => "AUTO_PASSTHROUGH",
        ServerTlsMode::IstioMutual => "ISTIO_MUTUAL",
        ServerTlsMode::OptionalMutual => "OPTIONAL_MUTUAL",
    }
}
