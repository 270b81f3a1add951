//! Property tests of the loader: any text, YAML-like or not, gives
//! resources or errors, never a panic, and deep or long text is refused or
//! read in bounded time (the cases end; their time is not asserted).

use std::path::Path;

use proptest::prelude::*;

use super::{depth::check_depth, load_str, parse_mesh};

/// Text built from YAML's own pieces, so most cases reach past the parser.
fn yaml_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("apiVersion: networking.istio.io/v1\n".to_string()),
        Just("kind: ServiceEntry\n".to_string()),
        Just("kind: VirtualService\n".to_string()),
        Just("kind: List\nitems:\n".to_string()),
        Just("metadata: {name: a}\n".to_string()),
        Just("spec:\n".to_string()),
        Just("  hosts: [a.example.com]\n".to_string()),
        Just("  http:\n  - match:\n    - uri: {regex: '\\w{200}'}\n".to_string()),
        Just("  timeout: 0.0000000001s\n".to_string()),
        Just("---\n".to_string()),
        Just("- ".to_string()),
        Just("&a [*a, *a]\n".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("]".to_string()),
        Just("}".to_string()),
        Just(": ".to_string()),
        Just("  ".to_string()),
        Just("\n".to_string()),
        "[a-z0-9 :#|>&*!%@`,.-]{0,12}",
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn yaml_like_text_never_panics(text in yaml_like()) {
        let _ = load_str(Path::new("prop.yaml"), &text);
        let _ = parse_mesh(Path::new("mesh.yaml"), &text);
    }

    #[test]
    fn any_text_never_panics(text in "\\PC{0,200}") {
        let _ = load_str(Path::new("prop.yaml"), &text);
    }

    #[test]
    fn nesting_past_the_limit_is_refused_whatever_its_form(
        opens in prop::collection::vec(prop_oneof![Just("["), Just("{a: ")], 65..2000),
    ) {
        let text = format!("spec: {}1\n", opens.concat());
        prop_assert!(check_depth(&text).is_err());
        let errors = load_str(Path::new("deep.yaml"), &text).expect_err("too deep");
        prop_assert!(errors.to_string().contains("levels deep"), "{}", errors);
    }
}
