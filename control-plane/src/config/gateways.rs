//! How a VirtualService names the gateways it binds to.

/// The gateway name that stands for every sidecar of the mesh.
pub const MESH_GATEWAY: &str = "mesh";

/// The Gateway, as `(namespace, name)`, that `reference` names when written
/// in a VirtualService of `namespace`: `ns/name` (`./name` for the
/// VirtualService's own namespace), the older `name.ns.svc.cluster.local`,
/// or a bare name in the VirtualService's namespace.
pub fn gateway_named<'a>(reference: &'a str, namespace: &'a str) -> (&'a str, &'a str) {
    if let Some((gateway_namespace, name)) = reference.split_once('/') {
        return match gateway_namespace {
            "." => (namespace, name),
            _ => (gateway_namespace, name),
        };
    }
    let mut labels = reference.split('.');
    match (labels.next(), labels.next()) {
        (Some(name), Some(gateway_namespace)) => (gateway_namespace, name),
        _ => (namespace, reference),
    }
}

#[cfg(test)]
mod tests;
