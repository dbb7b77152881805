//! Every refusal of the HTTP API, mapped once to a status and the JSON shape
//! `{"error": {"code", "field", "message"}}`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde::Serialize;

use crate::domain::{CampaignState, FieldError};
use crate::serve::json_response;
use crate::store::StoreError;

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// What went wrong and what to do.
    pub message: String,
    /// The campaign's current state, on conflicts.
    pub state: Option<CampaignState>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, field: None, message: message.into(), state: None }
    }

    /// 400: a field breaks a rule.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::new(400, "invalid_field", message) }
    }

    /// 400: the body is not what the endpoint reads.
    pub fn bad_body(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// 401: no valid bearer token.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            401,
            "unauthorized",
            "send `Authorization: Bearer <token>` with a token from the daemon's configuration",
        )
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", what)
    }

    /// 405.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(405, "method_not_allowed", "this path does not take that method")
    }

    /// 408: the body did not arrive in time.
    pub fn body_timeout(deadline: std::time::Duration) -> ApiError {
        ApiError {
            field: Some("body".into()),
            ..ApiError::new(
                408,
                "request_timeout",
                format!("the request body did not arrive within {deadline:?} (server.body_timeout_ms)"),
            )
        }
    }

    /// 409: the campaign's state forbids it.
    pub fn conflict(state: CampaignState, message: impl Into<String>) -> ApiError {
        ApiError { state: Some(state), ..ApiError::new(409, "conflict", message) }
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(413, "payload_too_large", message)
    }

    /// 415, naming the header.
    pub fn media_type(message: impl Into<String>) -> ApiError {
        ApiError { field: Some("content-type".into()), ..ApiError::new(415, "unsupported_media_type", message) }
    }

    /// A WeCom callback refused before any handler saw it (`code` says why).
    pub fn callback_refused(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(status, code, message)
    }

    /// 503: the daemon is stopping (or otherwise cannot take this now); try again later.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "unavailable", message)
    }

    /// 501: a capability of a later release.
    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(501, "not_implemented", message)
    }

    /// 500: logged; the client gets no internals.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError::new(500, "internal", "the daemon could not complete the request; see its log")
    }

    /// The HTTP answer.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            state: Option<&'a str>,
        }
        let body = Body {
            error: Inner {
                code: self.code,
                field: self.field.as_deref(),
                message: &self.message,
                state: self.state.map(CampaignState::as_str),
            },
        };
        json_response(self.status, serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => ApiError::not_found(format!("no campaign {id}")),
            StoreError::Conflict { state, message } => ApiError::conflict(state, message),
            // NATS lost while running: the client may try again once it is back.
            e @ StoreError::Unavailable { .. } => ApiError::unavailable(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn errors_render_the_documented_shape() {
        let resp = ApiError::invalid("settings.ttl_ms", "too long").into_response();
        assert_eq!(resp.status(), 400);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "invalid_field");
        assert_eq!(v["error"]["field"], "settings.ttl_ms");
        assert_eq!(v["error"]["message"], "too long");
        let c = ApiError::conflict(CampaignState::Running, "no").into_response();
        let body = c.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["state"], "running");
    }
}
