//! The status names and codes a VirtualService spells, as Istio reads
//! them: gRPC status names (a fault's `abort.grpcStatus`) and the HTTP
//! status codes among `retryOn`. Validation and translation share them.

/// gRPC's status codes by the names Istio accepts for `grpcStatus`.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The code of a gRPC status name, `None` for a name gRPC does not have.
pub fn grpc_code(name: &str) -> Option<u32> {
    GRPC_CODES
        .iter()
        .position(|known| *known == name)
        .and_then(|code| u32::try_from(code).ok())
}

/// The HTTP status codes Go's `http.StatusText` names: a number among
/// `retryOn` that is one of them is a status code to retry on.
const KNOWN_STATUS_CODES: &[u32] = &[
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 510, 511,
];

/// Whether `part` of `retryOn` is an HTTP status code (as istiod tells).
pub fn is_status_code(part: &str) -> bool {
    part.parse::<u32>()
        .is_ok_and(|code| KNOWN_STATUS_CODES.contains(&code))
}
