//! DestinationRule validation: host and subsets.

use super::*;

#[test]
fn destination_rule_needs_a_host_and_unique_subsets() {
    one_error(
        &destination_rule("d", "default", "  host: ''\n"),
        &["DestinationRule default/d: spec.host: host is empty"],
    );
    let lines = errors(&destination_rule(
        "d",
        "default",
        "  host: a.example.com\n  subsets:\n  - name: v1\n  - name: v1\n  - name: ''\n",
    ));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains(
            "spec.subsets[1].name: subset \"v1\" is defined twice (also at spec.subsets[0])"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("spec.subsets[2].name: subset has no name"),
        "{}",
        lines[1]
    );
    one_error(
        &destination_rule(
            "d",
            "default",
            "  host: a.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 0}\n      tls: {mode: SIMPLE}\n",
        ),
        &["spec.trafficPolicy.portLevelSettings[0].port.number: port 0 is out of range"],
    );
}
