//! Istio's `destinationrule.CaCertificateAnalyzer`: a DestinationRule that
//! originates SIMPLE or MUTUAL TLS names the CA that verifies the server,
//! `caCertificates` (or a `credentialName` Secret holding it), for the
//! whole host (IST0128) and per port (IST0129).

use super::generated;
use super::message::{
    Message, NO_SERVER_VERIFICATION_DESTINATION, NO_SERVER_VERIFICATION_PORT, Subject,
};
use crate::config::model::{ClientTlsSettings, TlsMode};
use crate::config::{ConfigSnapshot, Kind};

pub(super) fn analyze(snapshot: &ConfigSnapshot, out: &mut Vec<Message>) {
    for rule in snapshot
        .destination_rules
        .iter()
        .filter(|r| !generated(&r.meta))
    {
        let name = format!("{}/{}", rule.meta.namespace, rule.meta.name);
        let namespace = &rule.meta.namespace;
        let host = &rule.spec.host;
        let Some(policy) = &rule.spec.traffic_policy else {
            continue;
        };
        if let Some(mode) = policy.tls.as_ref().and_then(unverified) {
            out.push(Message::istio(
                NO_SERVER_VERIFICATION_DESTINATION,
                Subject::of(
                    Kind::DestinationRule,
                    rule,
                    Some("spec.trafficPolicy.tls.mode".into()),
                ),
                format!(
                    "DestinationRule {name} in namespace {namespace} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host}"
                ),
            ));
        }
        for (index, port) in policy.port_level_settings.iter().enumerate() {
            let Some(mode) = port.tls.as_ref().and_then(unverified) else {
                continue;
            };
            // The port as the selector's protobuf text prints it.
            let selector = port
                .port
                .map(|p| format!("number:{}", p.number))
                .unwrap_or_default();
            let field = format!("spec.trafficPolicy.portLevelSettings[{index}].tls.mode");
            out.push(Message::istio(
                NO_SERVER_VERIFICATION_PORT,
                Subject::of(Kind::DestinationRule, rule, Some(field)),
                format!(
                    "DestinationRule {name} in namespace {namespace} has TLS mode set to {mode} but no caCertificates are set to validate server identity for host: {host} at port {selector}"
                ),
            ));
        }
    }
}

/// The mode, when it is SIMPLE or MUTUAL with no CA to verify the server.
fn unverified(tls: &ClientTlsSettings) -> Option<&'static str> {
    let mode = match tls.mode {
        TlsMode::Simple => "SIMPLE",
        TlsMode::Mutual => "MUTUAL",
        _ => return None,
    };
    let has_ca = tls
        .ca_certificates
        .as_deref()
        .is_some_and(|ca| !ca.is_empty())
        || tls
            .credential_name
            .as_deref()
            .is_some_and(|c| !c.is_empty());
    (!has_ca).then_some(mode)
}
