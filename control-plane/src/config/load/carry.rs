//! What a file held at the last load, kept while it cannot be read or parsed.

use std::path::{Path, PathBuf};

use super::Loaded;
use crate::config::{ConfigSnapshot, Resource};

/// Completes `loaded` with what `last` (the previous load, before
/// validation) held from the files and directories that could not be read
/// now (or are not to be taken as they read now: what they gave is
/// replaced), and with its mesh config if the mesh file failed. A file being
/// edited keeps serving what it said, in the place a fresh load gives it
/// (by file path, then document), so the order that decides precedence
/// (the first VirtualService for a host wins) does not change meanwhile.
pub fn keep_unreadable(loaded: &mut Loaded, last: &ConfigSnapshot) {
    if loaded.mesh_failed {
        loaded.snapshot.mesh = last.mesh.clone();
    }
    let paths = &loaded.unreadable;
    let next = &mut loaded.snapshot;
    carry(&mut next.service_entries, &last.service_entries, paths);
    carry(&mut next.virtual_services, &last.virtual_services, paths);
    carry(&mut next.destination_rules, &last.destination_rules, paths);
    carry(&mut next.gateways, &last.gateways, paths);
    carry(&mut next.sidecars, &last.sidecars, paths);
    carry(&mut next.workload_entries, &last.workload_entries, paths);
    carry(&mut next.workload_groups, &last.workload_groups, paths);
    carry(&mut next.secrets, &last.secrets, paths);
    carry(&mut next.services, &last.services, paths);
    carry(&mut next.endpoints, &last.endpoints, paths);
    carry(&mut next.endpoint_slices, &last.endpoint_slices, paths);
    let (api, last_api) = (&mut next.gateway_api, &last.gateway_api);
    carry(&mut api.gateways, &last_api.gateways, paths);
    carry(&mut api.http_routes, &last_api.http_routes, paths);
    carry(&mut api.tls_routes, &last_api.tls_routes, paths);
    carry(&mut api.tcp_routes, &last_api.tcp_routes, paths);
    carry(&mut api.reference_grants, &last_api.reference_grants, paths);
}

fn carry<T: Clone>(next: &mut Vec<Resource<T>>, last: &[Resource<T>], paths: &[PathBuf]) {
    let unreadable = |file: &Path| paths.iter().any(|path| file.starts_with(path));
    next.retain(|resource| !unreadable(&resource.origin.file));
    next.extend(
        last.iter()
            .filter(|resource| unreadable(&resource.origin.file))
            .cloned(),
    );
    // Stable: the items of one Kubernetes List share an origin and keep
    // their order.
    next.sort_by(|a, b| {
        (&a.origin.file, a.origin.document).cmp(&(&b.origin.file, b.origin.document))
    });
}
