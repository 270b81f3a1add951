//! The fields of a Kubernetes object the control plane does not use, named
//! so that `validate` can list them instead of passing them over in silence.

use std::collections::BTreeSet;

use serde_yaml::Value;

use crate::config::Kind;

/// A field read by the control plane, and the fields read inside it (`None`:
/// all of it).
struct Field {
    name: &'static str,
    inner: Option<&'static [Field]>,
}

const fn all(name: &'static str) -> Field {
    Field { name, inner: None }
}

const fn part(name: &'static str, inner: &'static [Field]) -> Field {
    Field {
        name,
        inner: Some(inner),
    }
}

const METADATA: Field = part(
    "metadata",
    &[
        all("name"),
        all("namespace"),
        all("labels"),
        all("annotations"),
    ],
);

const ENDPOINT_PORT: &[Field] = &[
    all("name"),
    all("port"),
    all("protocol"),
    all("appProtocol"),
];

const SERVICE: &[Field] = &[
    all("apiVersion"),
    all("kind"),
    METADATA,
    part(
        "spec",
        &[
            all("type"),
            all("clusterIP"),
            all("clusterIPs"),
            all("selector"),
            all("externalName"),
            part(
                "ports",
                &[
                    all("name"),
                    all("port"),
                    all("targetPort"),
                    all("protocol"),
                    all("appProtocol"),
                ],
            ),
        ],
    ),
];

const ENDPOINTS: &[Field] = &[
    all("apiVersion"),
    all("kind"),
    METADATA,
    part(
        "subsets",
        &[
            part("addresses", &[all("ip")]),
            part("notReadyAddresses", &[all("ip")]),
            part("ports", ENDPOINT_PORT),
        ],
    ),
];

const ENDPOINT_SLICE: &[Field] = &[
    all("apiVersion"),
    all("kind"),
    METADATA,
    all("addressType"),
    part(
        "endpoints",
        &[all("addresses"), part("conditions", &[all("ready")])],
    ),
    part("ports", ENDPOINT_PORT),
];

/// The fields set in `object`, a Kubernetes object of `kind`, that the
/// control plane does not use, as paths (`status`, `spec.sessionAffinity`,
/// `spec.ports[].nodePort`), sorted; empty for kinds read whole.
pub fn unused_fields(kind: Kind, object: &Value) -> Vec<String> {
    let used = match kind {
        Kind::Service => SERVICE,
        Kind::Endpoints => ENDPOINTS,
        Kind::EndpointSlice => ENDPOINT_SLICE,
        _ => return Vec::new(),
    };
    let mut unused = BTreeSet::new();
    collect(object, used, "", &mut unused);
    unused.into_iter().collect()
}

fn collect(value: &Value, used: &[Field], path: &str, unused: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(mapping) => {
            for (key, inner) in mapping {
                let key = key
                    .as_str()
                    .map_or_else(|| format!("{key:?}"), str::to_string);
                let at = format!("{path}{key}");
                match used.iter().find(|field| field.name == key) {
                    None => {
                        unused.insert(at);
                    }
                    Some(Field {
                        inner: Some(fields),
                        ..
                    }) => collect(inner, fields, &format!("{at}."), unused),
                    Some(_) => {}
                }
            }
        }
        Value::Sequence(items) => {
            let path = format!("{}[].", path.trim_end_matches('.'));
            for item in items {
                collect(item, used, &path, unused);
            }
        }
        _ => {}
    }
}
