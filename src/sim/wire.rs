//! What the simulator's protocols share on the wire: the request size bound, the simulated
//! reset, and the SDK's attempt and request-ID headers.

use crate::http::Body;
use hyper::Response;

/// Far above any real request of these operations; a larger one is refused unread.
pub(super) const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Closes the connection without an answer, as a reset or a crashed server would.
#[derive(Debug, thiserror::Error)]
#[error("simulated connection reset")]
pub(super) struct Reset;

/// The attempt number of the SDK's `amz-sdk-request: attempt=N; max=M` header.
pub(super) fn parse_attempt(header: &str) -> Option<u32> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("attempt="))
        .and_then(|n| n.parse().ok())
}

pub(super) fn add_request_id(r: &mut Response<Body>, request_id: &str) {
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
}
