//! The field walk: every struct of the model has an entry in [`FIELDS`],
//! whose applied fields are exactly the fields its decoder accepts, and
//! whose unsupported fields it does not accept. A field added to the model
//! without saying whether it is applied, or a struct added without an
//! entry, fails here.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;

use super::{FIELDS, Fields, NESTED, Shape, is_not_supported};
use crate::config::error::Problem;
use crate::config::load::load_str;
use crate::config::model::*;

/// The fields `T`'s decoder accepts, read from the error it gives for a
/// field no struct has (serde lists the expected ones).
fn decoded_fields<T: DeserializeOwned>() -> BTreeSet<String> {
    let error = match serde_yaml::from_str::<T>("\"\\u0001\": 0") {
        Ok(_) => panic!("a struct that accepts any field"),
        Err(error) => error.to_string(),
    };
    let (_, expected) = error
        .split_once("unknown field `\u{1}`")
        .unwrap_or_else(|| panic!("not an unknown-field error: {error}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every struct of the model, by name, with its decoder's fields.
fn model_structs() -> Vec<(&'static str, BTreeSet<String>)> {
    vec![
        ("ServiceEntry", decoded_fields::<ServiceEntry>()),
        ("ServicePort", decoded_fields::<ServicePort>()),
        ("WorkloadSelector", decoded_fields::<WorkloadSelector>()),
        ("WorkloadEntry", decoded_fields::<WorkloadEntry>()),
        ("VirtualService", decoded_fields::<VirtualService>()),
        ("HttpRoute", decoded_fields::<HttpRoute>()),
        ("HttpMatchRequest", decoded_fields::<HttpMatchRequest>()),
        // StringMatch is decoded through StringMatchFields.
        ("StringMatchFields", decoded_fields::<StringMatch>()),
        (
            "HttpRouteDestination",
            decoded_fields::<HttpRouteDestination>(),
        ),
        ("Destination", decoded_fields::<Destination>()),
        ("PortSelector", decoded_fields::<PortSelector>()),
        ("HttpRedirect", decoded_fields::<HttpRedirect>()),
        ("HttpRewrite", decoded_fields::<HttpRewrite>()),
        ("HttpRetry", decoded_fields::<HttpRetry>()),
        ("HttpFaultInjection", decoded_fields::<HttpFaultInjection>()),
        ("FaultDelay", decoded_fields::<FaultDelay>()),
        ("FaultAbort", decoded_fields::<FaultAbort>()),
        ("Percent", decoded_fields::<Percent>()),
        ("HttpMirrorPolicy", decoded_fields::<HttpMirrorPolicy>()),
        ("CorsPolicy", decoded_fields::<CorsPolicy>()),
        ("Headers", decoded_fields::<Headers>()),
        ("HeaderOperations", decoded_fields::<HeaderOperations>()),
        ("TlsRoute", decoded_fields::<TlsRoute>()),
        ("TlsMatchAttributes", decoded_fields::<TlsMatchAttributes>()),
        ("TcpRoute", decoded_fields::<TcpRoute>()),
        ("L4MatchAttributes", decoded_fields::<L4MatchAttributes>()),
        ("RouteDestination", decoded_fields::<RouteDestination>()),
        ("DestinationRule", decoded_fields::<DestinationRule>()),
        (
            "MatchLabelsSelector",
            decoded_fields::<MatchLabelsSelector>(),
        ),
        ("Subset", decoded_fields::<Subset>()),
        ("TrafficPolicy", decoded_fields::<TrafficPolicy>()),
        ("PortTrafficPolicy", decoded_fields::<PortTrafficPolicy>()),
        (
            "LoadBalancerSettings",
            decoded_fields::<LoadBalancerSettings>(),
        ),
        (
            "ConnectionPoolSettings",
            decoded_fields::<ConnectionPoolSettings>(),
        ),
        ("ConsistentHashLb", decoded_fields::<ConsistentHashLb>()),
        ("HttpCookie", decoded_fields::<HttpCookie>()),
        ("RingHash", decoded_fields::<RingHash>()),
        ("Maglev", decoded_fields::<Maglev>()),
        ("OutlierDetection", decoded_fields::<OutlierDetection>()),
        ("TcpSettings", decoded_fields::<TcpSettings>()),
        ("TcpKeepalive", decoded_fields::<TcpKeepalive>()),
        ("HttpSettings", decoded_fields::<HttpSettings>()),
        ("ClientTlsSettings", decoded_fields::<ClientTlsSettings>()),
        ("Gateway", decoded_fields::<Gateway>()),
        ("Server", decoded_fields::<Server>()),
        ("ServerTlsSettings", decoded_fields::<ServerTlsSettings>()),
        ("Sidecar", decoded_fields::<Sidecar>()),
        (
            "IstioEgressListener",
            decoded_fields::<IstioEgressListener>(),
        ),
        (
            "OutboundTrafficPolicy",
            decoded_fields::<OutboundTrafficPolicy>(),
        ),
        ("WorkloadGroup", decoded_fields::<WorkloadGroup>()),
        ("WorkloadGroupMeta", decoded_fields::<WorkloadGroupMeta>()),
    ]
}

/// Structs of the model outside the walk, and why.
const OUTSIDE: [(&str, &str); 2] = [
    (
        "MeshConfig",
        "the mesh file, not a resource: an Istio install's MeshConfig loads as it is",
    ),
    (
        "ProxyPathNormalization",
        "MeshConfig's pathNormalization, part of the mesh file",
    ),
];

/// The names of the structs the model's sources declare.
fn declared_structs() -> BTreeSet<String> {
    let sources = [
        include_str!("../service_entry.rs"),
        include_str!("../virtual_service.rs"),
        include_str!("../virtual_service/http_policy.rs"),
        include_str!("../destination_rule.rs"),
        include_str!("../gateway.rs"),
        include_str!("../sidecar.rs"),
        include_str!("../mesh.rs"),
        include_str!("../workload_group.rs"),
    ];
    sources
        .iter()
        .flat_map(|source| source.lines())
        .filter_map(|line| {
            let rest = line.trim_start().trim_start_matches("pub ");
            let name = rest.strip_prefix("struct ")?;
            Some(
                name.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()?
                    .to_string(),
            )
        })
        .collect()
}

fn entry(name: &str) -> &'static Fields {
    super::entry(name)
        .unwrap_or_else(|| panic!("{name} has no entry in FIELDS: say which fields are applied"))
}

#[test]
fn every_struct_of_the_model_is_walked() {
    let walked: BTreeSet<String> = model_structs()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .chain(OUTSIDE.iter().map(|(name, _)| name.to_string()))
        .collect();
    assert_eq!(declared_structs(), walked);
    let listed: BTreeSet<String> = FIELDS.iter().map(|f| f.name.to_string()).collect();
    let walked_only: BTreeSet<String> = model_structs()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        listed, walked_only,
        "FIELDS lists exactly the walked structs"
    );
}

#[test]
fn every_field_is_applied_or_not_supported_never_both() {
    for (name, decoded) in model_structs() {
        let fields = entry(name);
        let applied: BTreeSet<String> = fields.applied.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            decoded, applied,
            "{name}: the fields the model reads are exactly the applied ones"
        );
        for field in fields.not_supported {
            assert!(
                !decoded.contains(*field),
                "{name}.{field} is decoded yet listed as not supported"
            );
        }
    }
}

#[test]
fn an_unsupported_field_is_told_from_an_unknown_one_by_its_path() {
    let vs = "VirtualService";
    assert!(is_not_supported(vs, "spec.http[0].directResponse"));
    assert!(is_not_supported(
        vs,
        "spec.http[2].fault.delay.exponentialDelay"
    ));
    assert!(!is_not_supported(vs, "spec.http[0].faults"));
    assert!(!is_not_supported(
        "DestinationRule",
        "spec.trafficPolicy.fault"
    ));
    assert!(!is_not_supported(vs, "spec.http[0].retries.backoff"));
    // TLS and TCP routes have the same fields; their matches do not:
    // Istio reserved TLS's sourceSubnet, L4's is still in its schema.
    assert!(is_not_supported(vs, "spec.tcp[0].match[1].sourceSubnet"));
    assert!(!is_not_supported(vs, "spec.tls[0].match[1].sourceSubnet"));
    // A map's key is not a field.
    assert!(!is_not_supported(vs, "spec.http[0].match[0].headers.fault"));
    assert!(!is_not_supported("Secret", "spec.fault"));
}

/// The resource kinds, whose specs are the structs of the same name.
const ROOTS: [&str; 7] = [
    "ServiceEntry",
    "VirtualService",
    "DestinationRule",
    "Gateway",
    "Sidecar",
    "WorkloadEntry",
    "WorkloadGroup",
];

/// A way from a resource kind to the struct `name`: the kind and the
/// fields on the way.
fn way_to(name: &str) -> (&'static str, Vec<(&'static str, Shape)>) {
    if let Some(root) = ROOTS.iter().find(|root| **root == name) {
        return (root, Vec::new());
    }
    let (parent, field, shape, _) = NESTED
        .iter()
        .find(|(_, _, _, child)| *child == name)
        .unwrap_or_else(|| panic!("no struct holds {name}: add it to NESTED"));
    let (root, mut steps) = way_to(parent);
    steps.push((field, *shape));
    (root, steps)
}

/// A document of `root` whose struct at the end of `steps` holds the one
/// field `field`, and the path to that field as errors name it.
fn document_setting(root: &str, steps: &[(&str, Shape)], field: &str) -> (String, String) {
    use serde_yaml::{Mapping, Value};
    let one = |key: &str, value: Value| {
        let mut map = Mapping::new();
        map.insert(Value::from(key), value);
        Value::Mapping(map)
    };
    let mut value = one(field, Value::from(0));
    let mut path = String::new();
    for (step, shape) in steps.iter().rev() {
        value = match shape {
            Shape::One => one(step, value),
            Shape::List => one(step, Value::Sequence(vec![value])),
            Shape::Map => one(step, one("key", value)),
        };
        let suffix = match shape {
            Shape::One => "",
            Shape::List => "[0]",
            Shape::Map => ".key",
        };
        path = format!(".{step}{suffix}{path}");
    }
    let mut document = one("apiVersion", Value::from("networking.istio.io/v1"));
    let Value::Mapping(map) = &mut document else {
        unreachable!("built as a mapping")
    };
    map.insert("kind".into(), root.into());
    map.insert("metadata".into(), one("name", "walked".into()));
    map.insert("spec".into(), value);
    let text = serde_yaml::to_string(&document).expect("serializes");
    (text, format!("spec{path}.{field}"))
}

#[test]
fn the_nesting_table_is_the_models_and_reaches_every_struct() {
    for fields in FIELDS {
        let (root, steps) = way_to(fields.name);
        let (text, path) = document_setting(root, &steps, "zzz");
        let errors = load_str(std::path::Path::new("walk.yaml"), &text)
            .expect_err("an unknown field is refused");
        let [error] = errors.0.as_slice() else {
            panic!("{}: one error expected: {errors}", fields.name)
        };
        assert_eq!(error.location.field.as_deref(), Some(path.as_str()));
        let Problem::UnknownField { expected, .. } = &error.problem else {
            panic!("{}: not an unknown field: {error}", fields.name)
        };
        let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        let applied: BTreeSet<&str> = fields.applied.iter().copied().collect();
        assert_eq!(
            expected, applied,
            "{path}: NESTED leads to {} but the model has another struct there",
            fields.name
        );
    }
}

#[test]
fn every_unsupported_field_is_reported_as_such_where_it_sits() {
    for fields in FIELDS {
        let (root, steps) = way_to(fields.name);
        for field in fields.not_supported {
            let (text, path) = document_setting(root, &steps, field);
            let errors = load_str(std::path::Path::new("walk.yaml"), &text)
                .expect_err("an unsupported field is refused");
            let [error] = errors.0.as_slice() else {
                panic!("{path}: one error expected: {errors}")
            };
            assert_eq!(error.location.field.as_deref(), Some(path.as_str()));
            assert!(
                matches!(&error.problem, Problem::NotSupported { field: named } if named == field),
                "{path}: {error}"
            );
        }
    }
}
