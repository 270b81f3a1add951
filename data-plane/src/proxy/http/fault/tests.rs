//! Fault injection as Envoy's fault filter does it: aborts answered
//! locally with `fault filter abort` (FI), delays that hold the request
//! and let it go on (DI), both counted under `http.<prefix>.fault.`.

use std::sync::Arc;
use std::time::Duration;

use crate::model::fault::{ABORT_BODY, Abort, AbortStatus, Delay, Fault};
use crate::model::fraction::Fraction;
use crate::model::http_filters::{FilterConfig, FilterKind};

use super::super::filters::test_support::{FAULT, exchange, filter, stats};
use super::*;

fn abort(status: AbortStatus, percentage: Fraction) -> Abort {
    Abort {
        status,
        percentage,
        body: ABORT_BODY.into(),
    }
}

fn fault_filter() -> Vec<crate::model::http_filters::HttpFilter> {
    vec![filter(FAULT, FilterKind::Fault(None))]
}

const GET: &str = "GET /get HTTP/1.1\r\nHost: api.test\r\n";

#[tokio::test]
async fn an_aborted_request_gets_the_status_and_envoy_s_body_and_is_counted() {
    let fault = Fault {
        delay: None,
        abort: Some(abort(AbortStatus::Http(503), Fraction::ALL)),
    };
    let (response, context) = exchange(
        fault_filter(),
        vec![(FAULT, FilterConfig::Fault(Arc::new(fault)))],
        GET,
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{response}"
    );
    assert!(
        response.contains("content-type: text/plain\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with("\r\n\r\nfault filter abort"),
        "{response}"
    );
    let stats = stats(&context);
    assert!(stats.contains(
        "envoy_http_fault_aborts_injected{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 1\n"
    ), "{stats}");
    assert!(stats.contains(
        "envoy_http_fault_delays_injected{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 0\n"
    ), "{stats}");
    assert!(
        stats.contains("response_code=\"503\",grpc_response_status=\"\",response_flags=\"FI\""),
        "{stats}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_delayed_request_waits_then_goes_on_flagged_di() {
    let fault = Fault {
        delay: Some(Delay {
            duration: Duration::from_secs(3),
            percentage: Fraction::ALL,
        }),
        abort: None,
    };
    let started = tokio::time::Instant::now();
    let (response, context) = exchange(
        fault_filter(),
        vec![(FAULT, FilterConfig::Fault(Arc::new(fault)))],
        GET,
    )
    .await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nhello"), "{response}");
    let stats = stats(&context);
    assert!(stats.contains(
        "envoy_http_fault_delays_injected{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 1\n"
    ), "{stats}");
    assert!(
        stats.contains("response_code=\"200\",grpc_response_status=\"\",response_flags=\"DI\""),
        "{stats}"
    );
    assert!(stats.contains(
        "envoy_http_fault_active_faults{envoy_http_conn_manager_prefix=\"outbound_0.0.0.0_80\"} 0\n"
    ), "{stats}");
}

#[tokio::test(start_paused = true)]
async fn a_delay_then_an_abort_is_flagged_di_and_fi() {
    let fault = Fault {
        delay: Some(Delay {
            duration: Duration::from_secs(1),
            percentage: Fraction::ALL,
        }),
        abort: Some(abort(AbortStatus::Http(429), Fraction::ALL)),
    };
    let (response, context) = exchange(
        fault_filter(),
        vec![(FAULT, FilterConfig::Fault(Arc::new(fault)))],
        GET,
    )
    .await;
    assert!(
        response.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{response}"
    );
    assert!(
        stats(&context)
            .contains("response_code=\"429\",grpc_response_status=\"\",response_flags=\"DI,FI\"")
    );
}

#[tokio::test]
async fn a_share_of_zero_injects_nothing_and_the_filter_s_own_fault_applies_without_a_route_one() {
    let never = Fault {
        delay: None,
        abort: Some(abort(
            AbortStatus::Http(503),
            Fraction {
                numerator: 0,
                denominator: 1_000_000,
            },
        )),
    };
    let (response, _) = exchange(
        fault_filter(),
        vec![(FAULT, FilterConfig::Fault(Arc::new(never)))],
        GET,
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let own = Fault {
        delay: None,
        abort: Some(abort(AbortStatus::Http(418), Fraction::ALL)),
    };
    let (response, _) = exchange(
        vec![filter(FAULT, FilterKind::Fault(Some(Arc::new(own))))],
        Vec::new(),
        GET,
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 418 "), "{response}");
}

#[tokio::test]
async fn a_route_config_under_another_filter_s_name_is_not_this_filter_s() {
    let fault = Fault {
        delay: None,
        abort: Some(abort(AbortStatus::Http(503), Fraction::ALL)),
    };
    let (response, _) = exchange(
        fault_filter(),
        vec![("fault.other", FilterConfig::Fault(Arc::new(fault)))],
        GET,
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
}

#[tokio::test]
async fn a_grpc_abort_answers_a_grpc_request_trailers_only() {
    let fault = Fault {
        delay: None,
        abort: Some(abort(AbortStatus::Grpc(14), Fraction::ALL)),
    };
    let (response, _) = exchange(
        fault_filter(),
        vec![(FAULT, FilterConfig::Fault(Arc::new(fault)))],
        "POST /pkg.Svc/Call HTTP/1.1\r\nHost: api.test\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("content-type: application/grpc\r\n"),
        "{response}"
    );
    assert!(response.contains("grpc-status: 14\r\n"), "{response}");
    assert!(
        response.contains("grpc-message: fault filter abort\r\n"),
        "{response}"
    );
}

#[test]
fn a_grpc_abort_of_a_plain_request_is_200_with_the_body() {
    let reply = http_abort(&abort(AbortStatus::Grpc(14), Fraction::ALL));
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "fault filter abort");
    assert_eq!((reply.flags, reply.details), ("FI", "fault_filter_abort"));
}

#[test]
fn http_statuses_map_to_grpc_statuses_as_envoy_maps_them() {
    assert_eq!(grpc_status_of(503), 14);
    assert_eq!(grpc_status_of(404), 12);
    assert_eq!(grpc_status_of(403), 7);
    assert_eq!(grpc_status_of(500), 2);
    assert_eq!(grpc_percent_encode("50% off\n"), "50%25 off%0A");
}

#[test]
fn di_takes_its_place_among_the_other_flags() {
    assert_eq!(with_delay_injected("-"), "DI");
    assert_eq!(with_delay_injected("UF"), "UF,DI");
    assert_eq!(with_delay_injected("FI"), "DI,FI");
    assert_eq!(with_delay_injected("URX,UF"), "DI,URX,UF");
}
