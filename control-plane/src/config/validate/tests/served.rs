//! What is served: each resource is judged alone, as istiod judges it; one
//! with an error is left out, the rest is served, and references to what
//! is not served are warnings.

use super::*;

fn checked(text: &str) -> Checked {
    check(load_str(Path::new("cfg.yaml"), text).unwrap_or_else(|errors| panic!("loads: {errors}")))
}

fn names<T>(resources: &[crate::config::Resource<T>]) -> Vec<&str> {
    resources
        .iter()
        .map(|resource| resource.meta.name.as_str())
        .collect()
}

#[test]
fn a_resource_with_an_error_is_left_out_and_the_others_are_served() {
    let bad = service_entry("  hosts: [bad.example.com]\n  ports: [{number: 0, name: http}]\n")
        .replace("name: se", "name: bad");
    let text = format!(
        "{bad}---\n{}---\n{}",
        service_entry(SE_HTTP),
        virtual_service(
            "  hosts: [httpbin.org]\n  http:\n  - route:\n    - destination: {host: httpbin.org}\n"
        )
    );
    let checked = checked(&text);
    assert_eq!(names(&checked.snapshot.service_entries), ["se"]);
    assert_eq!(names(&checked.snapshot.virtual_services), ["vs"]);
    assert_eq!(checked.errors.len(), 1, "{:?}", checked.errors);
    assert!(
        checked.errors[0]
            .to_string()
            .starts_with("cfg.yaml: document 1: ServiceEntry default/bad: spec.ports[0].number"),
        "{}",
        checked.errors[0]
    );
    assert!(checked.warnings.is_empty());
}

#[test]
fn the_first_of_two_definitions_is_served() {
    let second = service_entry(SE_HTTP).replace("httpbin.org", "second.example.com");
    let checked = checked(&format!("{}---\n{second}", service_entry(SE_HTTP)));
    assert_eq!(checked.snapshot.service_entries.len(), 1);
    assert_eq!(
        checked.snapshot.service_entries[0].spec.hosts,
        ["httpbin.org"]
    );
    assert_eq!(checked.errors.len(), 1);
    assert!(matches!(
        checked.errors[0].problem,
        Problem::Duplicate { .. }
    ));
}

#[test]
fn undefined_subsets_and_gateways_are_warnings_and_the_route_is_served() {
    let text = virtual_service(
        "  hosts: [httpbin.org]\n  gateways: [istio-system/missing]\n  http:\n  - route:\n    - destination: {host: httpbin.org, subset: v1}\n",
    );
    let checked = checked(&text);
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    assert_eq!(names(&checked.snapshot.virtual_services), ["vs"]);
    let problems: Vec<&Problem> = checked.warnings.iter().map(|w| &w.problem).collect();
    assert!(
        matches!(
            problems.as_slice(),
            [
                Problem::UnknownGateway { .. },
                Problem::UnknownSubset { .. }
            ]
        ),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .all(|problem| problem.severity() == Severity::Warning)
    );
}

#[test]
fn a_subset_of_a_rule_left_out_is_a_warning_for_the_route() {
    let rule = destination_rule(
        "rule",
        "default",
        "  host: httpbin.org\n  subsets:\n  - name: v1\n  - name: v1\n",
    );
    let route = virtual_service(
        "  hosts: [httpbin.org]\n  http:\n  - route:\n    - destination: {host: httpbin.org, subset: v1}\n",
    );
    let checked = checked(&format!("{rule}---\n{route}"));
    assert!(checked.snapshot.destination_rules.is_empty());
    assert_eq!(names(&checked.snapshot.virtual_services), ["vs"]);
    assert!(matches!(
        checked.errors.as_slice(),
        [error] if matches!(error.problem, Problem::DuplicateSubset { .. })
    ));
    assert!(matches!(
        checked.warnings.as_slice(),
        [warning] if matches!(warning.problem, Problem::UnknownSubset { .. })
    ));
}
