//! The field walk: every struct of the model has an entry in [`FIELDS`],
//! whose applied fields are exactly the fields its decoder accepts, and
//! whose unsupported fields it does not accept. A field added to the model
//! without saying whether it is applied, or a struct added without an
//! entry, fails here.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;

use super::{FIELDS, Fields};
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
        ("TcpSettings", decoded_fields::<TcpSettings>()),
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
const OUTSIDE: [(&str, &str); 1] = [(
    "MeshConfig",
    "the mesh file, not a resource: an Istio install's MeshConfig loads as it is",
)];

/// The names of the structs the model's sources declare.
fn declared_structs() -> BTreeSet<String> {
    let sources = [
        include_str!("../../model.rs"),
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
    FIELDS
        .iter()
        .find(|fields| fields.name == name)
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
fn an_unsupported_field_is_told_from_an_unknown_one() {
    let http_route = entry("HttpRoute").applied;
    assert!(super::is_not_supported(http_route, "fault"));
    assert!(super::is_not_supported(http_route, "corsPolicy"));
    assert!(!super::is_not_supported(http_route, "faults"));
    assert!(!super::is_not_supported(
        entry("TrafficPolicy").applied,
        "fault"
    ));
}
