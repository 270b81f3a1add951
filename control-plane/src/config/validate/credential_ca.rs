//! A `credentialName` that verifies peers (a MUTUAL Gateway server, a SIMPLE or MUTUAL DestinationRule) needs a CA: in its Secret, or in a `<name>-cacert` Secret. Without one the proxy waits for it forever, as with istiod: a warning says what to add.

use super::Finding;
use super::check::Check;
use crate::config::error::Problem;
use crate::config::model::secret::CA_SUFFIX;
use crate::config::model::{ServerTlsMode, TlsMode, TrafficPolicy};
use crate::config::{ConfigSnapshot, Kind};

/// Warns, per Gateway server and DestinationRule TLS setting, about a
/// `credentialName` whose CA no Secret of the resource's namespace holds.
pub(super) fn missing_credential_cas(snapshot: &ConfigSnapshot, findings: &mut Vec<Finding>) {
    for (index, gateway) in snapshot.gateways.iter().enumerate() {
        let mut check = Check::new(Kind::Gateway, gateway, index, findings);
        for (server_index, server) in gateway.spec.servers.iter().enumerate() {
            let Some(tls) = &server.tls else { continue };
            let verifies_clients = matches!(
                tls.mode,
                ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual
            );
            if let Some(credential) = &tls.credential_name
                && verifies_clients
            {
                let field = format!("spec.servers[{server_index}].tls.credentialName");
                check_ca(&mut check, snapshot, field, credential);
            }
        }
    }
    for (index, rule) in snapshot.destination_rules.iter().enumerate() {
        let mut check = Check::new(Kind::DestinationRule, rule, index, findings);
        let policies = rule
            .spec
            .traffic_policy
            .iter()
            .map(|policy| ("spec.trafficPolicy".to_string(), policy))
            .chain(
                rule.spec
                    .subsets
                    .iter()
                    .enumerate()
                    .filter_map(|(i, subset)| {
                        let policy = subset.traffic_policy.as_ref()?;
                        Some((format!("spec.subsets[{i}].trafficPolicy"), policy))
                    }),
            );
        for (path, policy) in policies {
            policy_cas(&mut check, snapshot, &path, policy);
        }
    }
}

/// The TLS settings of one traffic policy, its own and per port.
fn policy_cas(
    check: &mut Check<'_>,
    snapshot: &ConfigSnapshot,
    path: &str,
    policy: &TrafficPolicy,
) {
    let port_level = policy
        .port_level_settings
        .iter()
        .enumerate()
        .filter_map(|(i, port)| {
            Some((
                format!("{path}.portLevelSettings[{i}].tls"),
                port.tls.as_ref()?,
            ))
        });
    let settings = policy
        .tls
        .iter()
        .map(|tls| (format!("{path}.tls"), tls))
        .chain(port_level);
    for (field, tls) in settings {
        let verifies_server = matches!(tls.mode, TlsMode::Simple | TlsMode::Mutual)
            && tls.insecure_skip_verify != Some(true);
        if let Some(credential) = &tls.credential_name
            && verifies_server
        {
            check_ca(
                check,
                snapshot,
                format!("{field}.credentialName"),
                credential,
            );
        }
    }
}

/// Reports `credential` if no Secret of the checked resource's namespace
/// gives its CA: neither `<credential>` (ca.crt or cacert) nor
/// `<credential>-cacert`.
fn check_ca(check: &mut Check<'_>, snapshot: &ConfigSnapshot, field: String, credential: &str) {
    let namespace = check.meta.namespace.as_str();
    let ca_name = format!("{credential}{CA_SUFFIX}");
    let has_ca = snapshot.secrets.iter().any(|secret| {
        secret.meta.namespace == namespace
            && secret.spec.may_hold_credential()
            && (secret.meta.name == credential || secret.meta.name == ca_name)
            && secret.spec.ca_certificate().is_ok()
    });
    if !has_ca {
        let problem = Problem::CredentialWithoutCa {
            credential: credential.to_string(),
            namespace: namespace.to_string(),
        };
        check.report(field, problem);
    }
}

#[cfg(test)]
mod tests;
