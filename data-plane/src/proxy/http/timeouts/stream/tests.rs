//! A stream's timeouts: which runs out first, Envoy's answer before the
//! response (408, or 504 once the request is complete) and a reset after.

use std::convert::Infallible;

use http_body_util::BodyExt;

use super::super::connection::Streams;
use super::*;

fn timeouts(idle: Option<u64>, request: Option<u64>, max: Option<u64>) -> HttpTimeouts {
    HttpTimeouts {
        stream_idle: idle.map(Duration::from_secs),
        request: request.map(Duration::from_secs),
        max_stream_duration: max.map(Duration::from_secs),
        ..HttpTimeouts::default()
    }
}

#[test]
fn no_stream_timeout_no_timers() {
    assert!(activity(&timeouts(None, None, None), true).is_none());
    assert!(activity(&timeouts(Some(300), None, None), true).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_stream_without_activity_times_out_after_the_idle_timeout() {
    let t = timeouts(Some(300), None, None);
    let activity = activity(&t, true).unwrap();
    let start = Instant::now();
    assert_eq!(expiry(&t, &activity).await, Expired::Idle);
    assert!(start.elapsed() >= Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn activity_pushes_the_idle_timeout_back() {
    let t = timeouts(Some(10), None, None);
    let activity = activity(&t, false).unwrap();
    let start = Instant::now();
    let touching = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            activity.touch();
        }
    };
    let (expired, ()) = tokio::join!(expiry(&t, &activity), touching);
    assert_eq!(expired, Expired::Idle);
    assert!(start.elapsed() >= Duration::from_secs(28));
}

#[tokio::test(start_paused = true)]
async fn the_request_timeout_only_runs_until_the_request_is_complete() {
    let t = timeouts(None, Some(5), Some(20));
    let incomplete = activity(&t, false).unwrap();
    assert_eq!(expiry(&t, &incomplete).await, Expired::Request);
    let complete = activity(&t, true).unwrap();
    let start = Instant::now();
    assert_eq!(expiry(&t, &complete).await, Expired::MaxDuration);
    assert!(start.elapsed() >= Duration::from_secs(20));
}

#[test]
fn replies_are_envoy_s() {
    let idle = Expired::Idle.reply(false);
    assert_eq!(
        (
            idle.status.as_u16(),
            idle.body.as_str(),
            idle.flags,
            idle.details
        ),
        (408, "stream timeout", "SI", "stream_idle_timeout")
    );
    assert_eq!(Expired::Idle.reply(true).status.as_u16(), 504);
    let request = Expired::Request.reply(false);
    assert_eq!(
        (
            request.status.as_u16(),
            request.body.as_str(),
            request.details
        ),
        (408, "request timeout", "request_overall_timeout")
    );
    let max = Expired::MaxDuration.reply(false);
    assert_eq!(
        (max.body.as_str(), max.details),
        ("downstream duration timeout", "max_duration_timeout")
    );
}

/// A response body that never sends anything.
struct Silent;

impl Body for Silent {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

#[tokio::test(start_paused = true)]
async fn a_started_response_that_idles_is_reset_and_counted() {
    let t = timeouts(Some(300), None, None);
    let activity = activity(&t, true).unwrap();
    let streams = Streams::new();
    let stats = Arc::new(crate::proxy::stats::DownstreamStats::default());
    let body = TimedResponse::new(
        Silent,
        streams.open(),
        Some((t, activity)),
        Some(stats.clone()),
    );
    let start = Instant::now();
    let error = body.collect().await.expect_err("the response is reset");
    assert!(start.elapsed() >= Duration::from_secs(300));
    assert_eq!(error.to_string(), "stream idle timeout");
    assert_eq!(stats.timeouts.rq_idle_timeout.load(Relaxed), 1);
    assert_eq!(streams.active(), 0, "the stream is closed");
}
