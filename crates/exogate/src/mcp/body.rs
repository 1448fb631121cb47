//! JSON-RPC answers for POST bodies `/mcp` cannot take. The MCP transport answers a body it
//! cannot read in plain text (a 415 for malformed JSON); a JSON-RPC client expects a JSON-RPC
//! error. This layer, in front of the transport and behind authentication:
//!
//! - reads a POST body up to [`MAX_BODY_BYTES`] (the transport's own limit; larger: `413`,
//!   `-32600`) and hands it on, so the transport's checks run in their order (Host, Origin,
//!   `Accept`, `Content-Type`, then the body);
//! - when the transport refuses a body sent as `application/json`, answers malformed JSON with
//!   `400` and `-32700` (parse error), and JSON that is not one JSON-RPC message (this server
//!   takes no batches: the MCP protocol since 2025-06-18 has none) with `400` and `-32600`
//!   (invalid request), both with `id: null`;
//! - turns any other plain-text error the transport gives a POST (a wrong `Content-Type` stays
//!   `415`, a wrong `Accept` stays `406`) into the same JSON-RPC error shape, status
//!   unchanged.
//!
//! GET and DELETE pass through untouched (streaming is not buffered).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The largest POST body `/mcp` reads (the transport's own limit).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// JSON-RPC 2.0: the body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: the JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC 2.0: the server failed.
pub const INTERNAL_ERROR: i64 = -32603;

/// A JSON-RPC error answer with no id (the request's id could not be read).
fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": code, "message": message },
    });
    (status, axum::Json(body)).into_response()
}

fn is_json(v: Option<&HeaderValue>) -> bool {
    v.and_then(|v| v.to_str().ok()).is_some_and(|h| {
        let essence = h.split_once(';').map_or(h, |(e, _)| e);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// The middleware (see the module docs).
pub async fn json_rpc_errors(req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            &format!("the request body is unreadable or larger than {MAX_BODY_BYTES} bytes"),
        );
    };
    let json_body = is_json(parts.headers.get(header::CONTENT_TYPE));
    // The transport checks Host, Origin, Accept and Content-Type first, then the body: its
    // answer is kept, only put in JSON-RPC form.
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(resp.headers().get(header::CONTENT_TYPE))
    {
        return resp;
    }
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE && json_body {
        // The content type was right, so the body is what the transport could not read.
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                &format!("parse error: the body is not JSON ({e})"),
            );
        }
        return rpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "invalid request: the body must be one JSON-RPC 2.0 request, notification or response (no batches)",
        );
    }
    let (_, body) = resp.into_parts();
    // The transport's own words, bounded; they quote no tenant text.
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = exogate_core::text::capped(text.trim(), 512);
    let code = if status.is_server_error() {
        INTERNAL_ERROR
    } else {
        INVALID_REQUEST
    };
    rpc_error(status, code, &message)
}
