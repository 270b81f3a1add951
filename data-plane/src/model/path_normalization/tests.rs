//! Envoy's path normalization, checked on the cases Envoy's own path
//! utility tests state.

use super::*;

fn normalize(path: &str) -> Result<String, InvalidPath> {
    let settings = PathNormalization {
        normalize: true,
        ..Default::default()
    };
    settings
        .apply(path)
        .map(|changed| changed.unwrap_or_else(|| path.to_string()))
}

#[test]
fn normal_paths_are_unchanged() {
    for path in [
        "/xyz",
        "/x/y/z",
        "/",
        "/A/B/C",
        "/a/%2F%2f/c",
        "/%c0%af",
        "/%5c%25",
    ] {
        assert_eq!(normalize(path).as_deref(), Ok(path), "{path}");
    }
}

#[test]
fn dot_segments_resolve_as_rfc_3986_says() {
    for (path, normal) in [
        ("/a/b/../c", "/a/c"),
        ("/a/b/./c", "/a/b/c"),
        ("a/b/../c", "/a/c"),
        ("/a/b/../../../../c", "/c"),
        ("/a/..\\c", "/c"),
        ("/a/b/%2E%2E/c", "/a/c"),
        ("/a/b/%2e%2e/c", "/a/c"),
        ("/a/b/%2E./c", "/a/c"),
        ("/a/b/%2E/c", "/a/b/c"),
        ("..", "/"),
        ("/../a/b", "/a/b"),
        ("/./a/b", "/a/b"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
    ] {
        assert_eq!(normalize(path).as_deref(), Ok(normal), "{path}");
    }
}

#[test]
fn unreserved_escapes_are_decoded_and_unsafe_characters_escaped() {
    assert_eq!(normalize("/%41%7e%2D").as_deref(), Ok("/A~-"));
    assert_eq!(normalize("/a%2Eb").as_deref(), Ok("/a%2Eb"));
    assert_eq!(normalize("/a\"b{c}").as_deref(), Ok("/a%22b%7Bc%7D"));
    assert_eq!(normalize("/100%").as_deref(), Ok("/100%"));
}

#[test]
fn an_escaped_nul_is_refused() {
    for path in [
        "/xyz/.%00../abc",
        "/xyz/%00.%00./abc",
        "/xyz/AAAAA%%0000/abc",
    ] {
        assert_eq!(normalize(path), Err(InvalidPath), "{path}");
    }
}

#[test]
fn the_query_is_left_alone() {
    assert_eq!(normalize("/a/../b?x=/../y").as_deref(), Ok("/b?x=/../y"));
    let merge = PathNormalization {
        merge_slashes: true,
        ..Default::default()
    };
    assert_eq!(merge.apply("/a//b?a=///c"), Ok(Some("/a/b?a=///c".into())));
    assert_eq!(merge.apply("//a/?b"), Ok(Some("/a/?b".into())));
    assert_eq!(merge.apply("/a/b/c//"), Ok(Some("/a/b/c/".into())));
    assert_eq!(merge.apply("/a"), Ok(None));
}

#[test]
fn escaped_slashes_are_kept_unless_unescaped_before_normalizing() {
    let keep = PathNormalization {
        normalize: true,
        ..Default::default()
    };
    assert_eq!(keep.apply("/a/%2F../b"), Ok(None));
    let unescape = PathNormalization {
        normalize: true,
        escaped_slashes: EscapedSlashes::Unescape,
        ..Default::default()
    };
    // `%2F..` becomes `/..`: a parent segment.
    assert_eq!(unescape.apply("/a/b%2F..%5Cc"), Ok(Some("/a/c".into())));
}

#[test]
fn nothing_changes_without_settings() {
    let off = PathNormalization::default();
    assert!(!off.is_active());
    assert_eq!(off.apply("/a/../b//c"), Ok(None));
}
