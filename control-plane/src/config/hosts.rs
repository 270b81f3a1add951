//! Host names as Istio compares them: short names resolved in a namespace,
//! wildcards, `exportTo` visibility and `namespace/dnsName` entries.

use std::net::IpAddr;

use shared::node::DOMAIN_SUFFIX;

/// Resolves a host as written in a resource of `namespace`: a short name
/// (`reviews`) becomes `reviews.<namespace>.svc.cluster.local`, relative to
/// the resource's namespace and not the service's. Names with a dot,
/// wildcards and IP addresses are complete already and returned unchanged;
/// case is kept.
pub fn resolve(host: &str, namespace: &str) -> String {
    if host.contains('.') || host.starts_with('*') || host.parse::<IpAddr>().is_ok() {
        host.to_string()
    } else {
        format!("{host}.{namespace}.{DOMAIN_SUFFIX}")
    }
}

/// Whether `host` is covered by `pattern`: equal, or `pattern` is `*` or a
/// wildcard (`*.example.com`) whose suffix `host` ends with. A wildcard
/// `host` is covered only by a wildcard at most as specific
/// (`*.com` covers `*.example.com`, not the other way round).
pub fn matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" || pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) => match host.strip_prefix('*') {
            Some(host_suffix) => host_suffix.ends_with(suffix),
            None => host.ends_with(suffix),
        },
        None => false,
    }
}

/// Specificity for picking the closest of several matching patterns: an
/// exact name beats any wildcard, a longer wildcard beats a shorter one.
pub fn specificity(pattern: &str) -> usize {
    if pattern.starts_with('*') {
        pattern.len() - 1
    } else {
        usize::MAX
    }
}

/// Whether a resource of namespace `owner` with `export_to` is visible in
/// namespace `viewer`. Empty is the mesh default: every namespace. `*` is
/// every namespace, `.` the owner's, `~` none, anything else names a
/// namespace. `*` outweighs every other entry, and `~` the named ones.
pub fn exported_to(export_to: &[String], owner: &str, viewer: &str) -> bool {
    if export_to.is_empty() || export_to.iter().any(|to| to == "*") {
        return true;
    }
    if export_to.iter().any(|to| to == "~") {
        return false;
    }
    export_to.iter().any(|to| match to.as_str() {
        "." => owner == viewer,
        namespace => namespace == viewer,
    })
}

/// Splits a `namespace/dnsName` entry (Sidecar `egress.hosts`, Gateway
/// server `hosts`) into its namespace, `None` where none is written, and
/// its DNS name.
pub fn split_namespace(entry: &str) -> (Option<&str>, &str) {
    match entry.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, entry),
    }
}

/// Whether the namespace part of a `namespace/dnsName` entry selects a host
/// declared in `host_ns`, for an entry owned by `owner_ns` (the Sidecar's
/// or the Gateway's namespace): `*` (or none written) is any namespace,
/// `.` the owner's, `~` none, anything else that namespace.
pub fn namespace_selects(namespace: Option<&str>, host_ns: &str, owner_ns: &str) -> bool {
    match namespace.unwrap_or("*") {
        "*" => true,
        "." => host_ns == owner_ns,
        "~" => false,
        namespace => namespace == host_ns,
    }
}

/// Whether a Sidecar `egress.hosts` entry admits `host`, declared in
/// `host_ns`, to a proxy in `proxy_ns`: the namespace part as
/// [`namespace_selects`] reads it, the name part a host pattern as
/// [`matches`] takes it.
pub fn egress_host_admits(entry: &str, host: &str, host_ns: &str, proxy_ns: &str) -> bool {
    let (namespace, pattern) = split_namespace(entry);
    namespace_selects(namespace, host_ns, proxy_ns) && matches(pattern, host)
}

#[cfg(test)]
mod tests;
