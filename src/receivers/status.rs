//! The one place that turns a pipeline's refusal into what a client sees, shared by every
//! receiver: `ConsumeError` → gRPC code → HTTP status, and back (otelcol's
//! `receiver/otlpreceiver/internal/errors`).

use http::StatusCode;
use tonic::Code;

use crate::pipeline::{ConsumeError, ErrorKind};

/// The gRPC status for a refused batch: retryable → `UNAVAILABLE`, permanent → `INTERNAL`.
pub fn grpc_status(error: &ConsumeError) -> tonic::Status {
    let code = match error.kind {
        ErrorKind::Retryable { .. } => Code::Unavailable,
        ErrorKind::Permanent => Code::Internal,
    };
    tonic::Status::new(code, error.message.clone())
}

/// The HTTP status otelcol answers for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => StatusCode::SERVICE_UNAVAILABLE,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unimplemented => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code for an HTTP status (for statuses built from HTTP errors).
pub fn grpc_code(status: StatusCode) -> Code {
    match status.as_u16() {
        200..=299 => Code::Ok,
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 => Code::ResourceExhausted,
        502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// Seconds for a `Retry-After` header when the error asks the client to wait (rounded up,
/// at least 1).
pub fn retry_after_seconds(error: &ConsumeError) -> Option<u64> {
    match error.kind {
        ErrorKind::Retryable {
            retry_after: Some(after),
        } => Some(after.as_secs() + u64::from(after.subsec_nanos() > 0)).map(|s| s.max(1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn consume_errors_map_to_grpc_and_http() {
        let retry = ConsumeError::retryable("full");
        assert_eq!(grpc_status(&retry).code(), Code::Unavailable);
        assert_eq!(
            http_status(grpc_status(&retry).code()),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let perm = ConsumeError::permanent("bad");
        assert_eq!(grpc_status(&perm).code(), Code::Internal);
        assert_eq!(
            http_status(Code::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn tables_match_otelcol() {
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::Unimplemented), StatusCode::NOT_FOUND);
        assert_eq!(http_status(Code::DataLoss), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(grpc_code(StatusCode::BAD_GATEWAY), Code::Unavailable);
        assert_eq!(
            grpc_code(StatusCode::TOO_MANY_REQUESTS),
            Code::ResourceExhausted
        );
        assert_eq!(grpc_code(StatusCode::IM_A_TEAPOT), Code::Unknown);
    }

    #[test]
    fn retry_after_rounds_up() {
        let e = ConsumeError::retry_after("x", Duration::from_millis(1500));
        assert_eq!(retry_after_seconds(&e), Some(2));
        let e = ConsumeError::retry_after("x", Duration::from_millis(10));
        assert_eq!(retry_after_seconds(&e), Some(1));
        assert_eq!(retry_after_seconds(&ConsumeError::retryable("x")), None);
    }
}
