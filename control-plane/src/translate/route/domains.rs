//! The domains of a service's virtual host, as istiod generates them for a
//! sidecar: the host, the short forms of a Kubernetes service's host, and
//! the service's IP addresses, each alone and with the port.

use shared::node::DOMAIN_SUFFIX;

use crate::translate::registry::{Service, ServiceAddress};

/// The domains of `service` on `port` for a sidecar in `proxy_namespace`:
/// `<host>`, then for a host `<name>.<ns>.svc.cluster.local` the forms
/// `<name>` (only in `<ns>` itself), `<name>.<ns>.svc` and `<name>.<ns>`,
/// then each IP address (a CIDR range is no Host header); each followed by
/// its `:<port>` form.
pub fn service_domains(service: &Service<'_>, port: u32, proxy_namespace: &str) -> Vec<String> {
    let mut names = vec![service.host.clone()];
    names.extend(short_forms(&service.host, proxy_namespace));
    names.extend(
        service
            .addresses()
            .into_iter()
            .filter_map(|address| match address {
                ServiceAddress::Ip(ip) => Some(ip.to_string()),
                ServiceAddress::Cidr { .. } => None,
            }),
    );
    names
        .into_iter()
        .flat_map(|name| {
            let with_port = format!("{name}:{port}");
            [name, with_port]
        })
        .collect()
}

/// The short forms of a Kubernetes service host a client in
/// `proxy_namespace` can write; none for other hosts.
fn short_forms(host: &str, proxy_namespace: &str) -> Vec<String> {
    let Some(name_ns) = host.strip_suffix(&format!(".{DOMAIN_SUFFIX}")) else {
        return Vec::new();
    };
    let Some((name, namespace)) = name_ns.split_once('.') else {
        return Vec::new();
    };
    let mut forms = Vec::new();
    if namespace == proxy_namespace {
        forms.push(name.to_string());
    }
    forms.push(format!("{name_ns}.svc"));
    forms.push(name_ns.to_string());
    forms
}

#[cfg(test)]
mod tests;
