//! The agent's xDS conversion: any bytes, decoded as a Listener, Cluster,
//! RouteConfiguration, ClusterLoadAssignment or Secret (the first byte
//! picks which) and applied to a config store, are accepted or rejected
//! with an error, never a panic.

#![no_main]

use data_plane::store::ConfigStore;
use libfuzzer_sys::fuzz_target;
use proto::wkt::Any;
use shared::type_url;

const TYPES: [&str; 5] = [
    type_url::LISTENER,
    type_url::CLUSTER,
    type_url::ROUTE,
    type_url::ENDPOINT,
    type_url::SECRET,
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, value)) = data.split_first() else {
        return;
    };
    let type_url = TYPES[usize::from(kind) % TYPES.len()];
    let store = ConfigStore::new(Box::new(|_| Ok(())));
    let resource = Any {
        type_url: type_url.to_string(),
        value: value.to_vec(),
    };
    let _ = store.update(type_url, &[resource]);
});
