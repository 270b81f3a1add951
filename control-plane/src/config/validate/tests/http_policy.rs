//! VirtualService fault, mirror, CORS, retry and timeout validation, as
//! Istio's validation judges them.

use super::*;

/// A VirtualService for a.example.com whose one HTTP route has `extra`
/// (YAML lines indented for the route's keys).
fn http_route(extra: &str) -> String {
    virtual_service(&format!(
        "  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {{host: a.example.com}}\n{extra}"
    ))
}

#[test]
fn faults_need_a_delay_or_an_abort_with_what_envoy_applies() {
    valid(&http_route(
        "    fault:\n      delay: {fixedDelay: 2s, percentage: {value: 50}}\n      abort: {httpStatus: 503, percentage: {value: 10}}\n",
    ));
    valid(&http_route(
        "    fault: {abort: {grpcStatus: UNAVAILABLE}}\n",
    ));
    one_error(
        &http_route("    fault: {}\n"),
        &["spec.http[0].fault: fault has neither delay nor abort"],
    );
    one_error(
        &http_route("    fault: {delay: {percentage: {value: 5}}}\n"),
        &["spec.http[0].fault.delay: delay has no fixedDelay"],
    );
    one_error(
        &http_route("    fault: {abort: {percentage: {value: 5}}}\n"),
        &["spec.http[0].fault.abort: abort has no httpStatus"],
    );
    one_error(
        &http_route("    fault: {abort: {httpStatus: 700}}\n"),
        &["spec.http[0].fault.abort.httpStatus: HTTP status 700 is not in range 200-599"],
    );
    one_error(
        &http_route("    fault: {abort: {grpcStatus: BROKEN}}\n"),
        &["spec.http[0].fault.abort.grpcStatus: gRPC status \"BROKEN\" is not supported"],
    );
    one_error(
        &http_route("    fault: {abort: {httpStatus: 503, percentage: {value: 101}}}\n"),
        &["spec.http[0].fault.abort.percentage.value: percentage 101 is not between 0 and 100"],
    );
    one_error(
        &http_route("    fault: {delay: {fixedDelay: 0.5ms}}\n"),
        &["spec.http[0].fault.delay.fixedDelay: duration \"500µs\" is less than 1ms"],
    );
}

#[test]
fn an_exponential_delay_or_http2_abort_is_not_supported() {
    let error = load_error(&http_route("    fault: {delay: {exponentialDelay: 1s}}\n"));
    assert!(
        error.contains(
            "spec.http[0].fault.delay.exponentialDelay: not supported by this control plane"
        ),
        "{error}"
    );
    let error = load_error(&http_route("    fault: {abort: {http2Error: x}}\n"));
    assert!(
        error.contains("not supported by this control plane"),
        "{error}"
    );
}

#[test]
fn mirrors_name_valid_destinations_and_shares() {
    valid(&http_route(
        "    mirror: {host: b.example.com}\n    mirrorPercentage: {value: 12.5}\n    mirrors: [{destination: {host: c.example.com}, percentage: {value: 1}}]\n",
    ));
    one_error(
        &http_route("    mirror: {host: ''}\n"),
        &["spec.http[0].mirror.host: destination host is empty"],
    );
    one_error(
        &http_route(
            "    mirrors: [{destination: {host: c.example.com}, percentage: {value: -1}}]\n",
        ),
        &["spec.http[0].mirrors[0].percentage.value: percentage -1 is not between 0 and 100"],
    );
    one_error(
        &http_route("    mirror: {host: b.example.com}\n    mirrorPercent: 150\n"),
        &["spec.http[0].mirrorPercent: percentage 150 is not between 0 and 100"],
    );
}

#[test]
fn a_redirect_takes_no_fault_or_mirror() {
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - redirect: {uri: /b}\n    mirror: {host: b.example.com}\n",
        ),
        &["spec.http[0].mirror: mirror cannot be set with a redirect"],
    );
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - redirect: {uri: /b}\n    fault: {abort: {httpStatus: 500}}\n",
        ),
        &["spec.http[0].fault: fault cannot be set with a redirect"],
    );
}

#[test]
fn cors_methods_headers_origins_and_max_age_are_checked() {
    valid(&http_route(
        "    corsPolicy:\n      allowOrigins: [{exact: 'https://a.example.com'}, {regex: '.*'}]\n      allowMethods: [GET, POST, '*']\n      allowHeaders: [x-a, '*']\n      exposeHeaders: [x-b]\n      maxAge: 24h\n      allowCredentials: true\n      unmatchedPreflights: IGNORE\n",
    ));
    one_error(
        &http_route("    corsPolicy: {allowMethods: [FETCH]}\n"),
        &["spec.http[0].corsPolicy.allowMethods[0]: \"FETCH\" is not a supported HTTP method"],
    );
    one_error(
        &http_route("    corsPolicy: {allowHeaders: ['x a']}\n"),
        &[
            "spec.http[0].corsPolicy.allowHeaders[0]: header name \"x a\" is not a valid header name",
        ],
    );
    one_error(
        &http_route("    corsPolicy: {allowOrigins: [{exact: ''}]}\n"),
        &["spec.http[0].corsPolicy.allowOrigins[0]: allowOrigins entry is empty"],
    );
    one_error(
        &http_route("    corsPolicy: {maxAge: 1500ms}\n"),
        &["spec.http[0].corsPolicy.maxAge: maxAge \"1.5s\" is not a whole number of seconds"],
    );
}

#[test]
fn retries_name_envoy_conditions_or_status_codes() {
    valid(&http_route(
        "    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 'gateway-error,connect-failure,refused-stream,reset,retriable-4xx,retriable-status-codes,503', retryRemoteLocalities: true, retryIgnorePreviousHosts: true, backoff: 25ms}\n",
    ));
    one_error(
        &http_route("    retries: {attempts: 3, retryOn: 'gateway-error,sometimes'}\n"),
        &["spec.http[0].retries.retryOn: \"sometimes\" is not a valid retryOn condition"],
    );
    one_error(
        &http_route("    retries: {attempts: 0, retryOn: 5xx}\n"),
        &["spec.http[0].retries: retry policy configured when attempts are 0"],
    );
    one_error(
        &http_route("    retries: {attempts: 2, perTryTimeout: 0s}\n"),
        &["spec.http[0].retries.perTryTimeout: duration \"0ns\" is less than 1ms"],
    );
    valid(&http_route("    retries: {attempts: 0}\n"));
}

#[test]
fn a_route_timeout_is_at_least_one_millisecond() {
    valid(&http_route("    timeout: 1ms\n"));
    one_error(
        &http_route("    timeout: 0s\n"),
        &["spec.http[0].timeout: duration \"0ns\" is less than 1ms"],
    );
}

#[test]
fn headers_edit_no_pseudo_header_or_host_but_the_request_authority() {
    valid(&http_route(
        "    headers:\n      request: {set: {x-a: '1', ':authority': b.example.com}, add: {x-b: '2'}, remove: [x-c]}\n      response: {set: {x-d: '3'}, remove: [x-e]}\n",
    ));
    one_error(
        &http_route("    headers: {request: {remove: [host]}}\n"),
        &["spec.http[0].headers.request.remove[0]: header \"host\" cannot be edited"],
    );
    one_error(
        &http_route("    headers: {response: {set: {':status': '200'}}}\n"),
        &["spec.http[0].headers.response.set.:status: header \":status\" cannot be edited"],
    );
    one_error(
        &http_route("    headers: {request: {add: {'x a': b}}}\n"),
        &["spec.http[0].headers.request.add.x a: header name \"x a\" is not a valid header name"],
    );
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: a.example.com}\n      headers: {request: {remove: [':path']}}\n",
        ),
        &["spec.http[0].route[0].headers.request.remove[0]: header \":path\" cannot be edited"],
    );
}

#[test]
fn the_request_authority_is_set_once() {
    one_error(
        &http_route(
            "    rewrite: {authority: b.example.com}\n    headers: {request: {set: {host: c.example.com}}}\n",
        ),
        &[
            "spec.http[0].headers.request: the request authority is set twice (\"b.example.com\", then \"c.example.com\")",
        ],
    );
}

#[test]
fn a_match_reads_header_names_and_no_jwt_claims() {
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - match: [{headers: {'@request.auth.claims.group': {exact: admin}}}]\n    route:\n    - destination: {host: a.example.com}\n",
        ),
        &[
            "spec.http[0].match[0].headers.@request.auth.claims.group: not supported by this control plane",
        ],
    );
    one_error(
        &virtual_service(
            "  hosts: [a.example.com]\n  http:\n  - match: [{withoutHeaders: {'x y': {exact: a}}}]\n    route:\n    - destination: {host: a.example.com}\n",
        ),
        &["header name \"x y\" is not a valid header name"],
    );
}
