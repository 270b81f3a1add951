//! Mirroring as Envoy's router shadows: the host suffix, the shadow's
//! head, and a body streamed to shadows without holding up the request.

use http_body_util::Full;

use super::*;

#[test]
fn the_shadow_suffix_goes_before_the_port() {
    assert_eq!(shadow_host("httpbin.org"), "httpbin.org-shadow");
    assert_eq!(shadow_host("httpbin.org:8080"), "httpbin.org-shadow:8080");
    assert_eq!(shadow_host("[::1]:80"), "[::1]-shadow:80");
    assert_eq!(shadow_host("[::1]"), "[::1]-shadow");
}

fn head(host: &'static str) -> Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.uri = "/post".parse().unwrap();
    parts
        .headers
        .insert(header::HOST, HeaderValue::from_static(host));
    parts
        .headers
        .insert("x-request-id", HeaderValue::from_static("abc"));
    parts
}

#[test]
fn the_shadow_s_head_is_the_upstream_one_with_its_host_suffixed_and_marked_internal() {
    let shadow = shadow_head(&head("api.test:80"), true);
    assert_eq!(shadow.headers[header::HOST], "api.test-shadow:80");
    assert_eq!(shadow.headers["x-envoy-internal"], "true");
    assert_eq!(shadow.headers["x-request-id"], "abc");
    assert_eq!(shadow.uri, "/post");
    let unsuffixed = shadow_head(&head("api.test:80"), false);
    assert_eq!(unsuffixed.headers[header::HOST], "api.test:80");
}

fn body(chunks: &[&'static str]) -> Body {
    let frames: Vec<Result<Frame<Bytes>, hyper::Error>> = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
        .collect();
    http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed()
}

#[tokio::test]
async fn each_shadow_gets_the_whole_body_the_request_sends() {
    let mut tee = Tee {
        inner: body(&["hello ", "world"]),
        shadows: Vec::new(),
    };
    let (first, _) = tee.shadow();
    let (second, _) = tee.shadow();
    let sent = tee.collect().await.unwrap().to_bytes();
    assert_eq!(sent, "hello world");
    assert_eq!(first.collect().await.unwrap().to_bytes(), "hello world");
    assert_eq!(second.collect().await.unwrap().to_bytes(), "hello world");
}

#[tokio::test]
async fn a_shadow_too_far_behind_is_abandoned_and_the_request_goes_on() {
    let big = Bytes::from(vec![b'x'; SHADOW_BUFFER_LIMIT + 1]);
    let inner = Full::new(big.clone())
        .map_err(|never| match never {})
        .boxed();
    let mut tee = Tee {
        inner,
        shadows: Vec::new(),
    };
    let (_shadow, abandoned) = tee.shadow();
    assert_eq!(tee.collect().await.unwrap().to_bytes(), big);
    // The permit is stored: the sender sees it even if it waits later.
    tokio::time::timeout(Duration::from_secs(1), abandoned.notified())
        .await
        .expect("abandoned");
}

#[tokio::test]
async fn a_request_body_dropped_unfinished_abandons_its_shadows() {
    let mut tee = Tee {
        inner: body(&["partial"]),
        shadows: Vec::new(),
    };
    let (_shadow, abandoned) = tee.shadow();
    drop(tee);
    tokio::time::timeout(Duration::from_secs(1), abandoned.notified())
        .await
        .expect("abandoned");
}
