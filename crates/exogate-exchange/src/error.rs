//! One typed error for everything the Exchange admin API can answer, built from the three body
//! families of `docs/MICROSOFT.md#errors`: (A) OData JSON errors, (B) empty or NUL-byte bodies
//! (classified by status only, never fed to a JSON or gzip decoder), (C) plain text.

use std::time::Duration;

use serde::Serialize;

use crate::identity::IdentityError;
use crate::token::TokenError;

/// What went wrong with an Exchange call, named by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ExchangeError {
    /// The object does not exist (404, or 400 with ManagementObjectNotFoundException).
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The identity matches several objects; ask for a more precise one.
    #[error("ambiguous identity: {message}")]
    Ambiguous { message: String },
    /// A parameter name or value was refused.
    #[error("invalid parameter: {message}")]
    InvalidParameter { message: String },
    /// 403: the app lacks a directory role (or the cmdlet is not allowed for it).
    #[error("forbidden (the app's directory role is missing or not yet active){}", diag(.diagnostics))]
    Forbidden { diagnostics: Option<String> },
    /// 401: the token lacks `Exchange.ManageAsApp` or was refused.
    #[error("unauthorized (the token carries no Exchange permission){}", diag(.diagnostics))]
    Unauthorized { diagnostics: Option<String> },
    /// 429 or a concurrency message; wait `retry_after` if given.
    #[error("throttled by Exchange{}", .retry_after.map(|d| format!(" (retry after {:.3}s)", d.as_secs_f64())).unwrap_or_default())]
    Throttled {
        #[serde(serialize_with = "ser_opt_duration")]
        retry_after: Option<Duration>,
        message: String,
    },
    /// 5xx, timeout or network failure: try again later.
    #[error("Exchange is unavailable: {message}")]
    Transient {
        status: Option<u16>,
        message: String,
    },
    /// The cmdlet ran and refused the operation.
    #[error("rejected by Exchange ({}): {message}", .exception_type.as_deref().unwrap_or("no exception type"))]
    Rejected {
        status: u16,
        exception_type: Option<String>,
        message: String,
    },
    /// A list could not be read completely (failed continuation, foreign nextLink, truncation
    /// warning). Never returned as a shorter list.
    #[error("incomplete list after {pages_read} page(s): {reason}")]
    IncompleteList { pages_read: u32, reason: String },
    /// No token could be had for the tenant.
    #[error("token: {0}")]
    Token(#[from] TokenError),
    /// An identity given by the caller was refused before anything was sent.
    #[error("invalid identity: {0}")]
    InvalidIdentity(#[from] IdentityError),
    /// A 200 answer that is not the documented envelope.
    #[error("unexpected response from Exchange: {0}")]
    Protocol(String),
}

fn diag(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl ExchangeError {
    /// Worth retrying for a read (throttling, 5xx, network).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled { .. } | Self::Transient { .. } => true,
            Self::Token(t) => t.is_retryable(),
            _ => false,
        }
    }

    /// The server's requested wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            Self::Token(TokenError::Throttled { retry_after }) => *retry_after,
            _ => None,
        }
    }
}

/// Response headers the classifier looks at.
#[derive(Debug, Default, Clone)]
pub struct ErrorHeaders {
    pub retry_after: Option<Duration>,
    pub exception_type: Option<String>,
    pub diagnostics: Option<String>,
}

impl ErrorHeaders {
    pub fn from_headers(h: &reqwest::header::HeaderMap) -> Self {
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
        };
        Self {
            retry_after: crate::retry::parse_retry_after(h),
            exception_type: get("x-exceptiontype"),
            diagnostics: get("x-ms-diagnostics"),
        }
    }
}

/// The message and exception type pulled out of a family-A body (in the order of
/// `docs/MICROSOFT.md#errors`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParsedError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub exception_type: Option<String>,
}

/// Parses a family-A JSON error value: message from `innererror.internalexception.message` →
/// `details[0].message` (an `Id|Type|text` string or a nested JSON string) → `error.message`;
/// exception type from `innererror.internalexception.type` → the middle `|` segment →
/// `TypeName`/`ClassName` of the nested JSON.
pub fn parse_error_value(v: &serde_json::Value) -> Option<ParsedError> {
    let err = v.get("error")?;
    let s = |v: Option<&serde_json::Value>| {
        v.and_then(|x| x.as_str())
            .map(str::to_owned)
            .filter(|x| !x.is_empty())
    };
    let code = s(err.get("code"));
    let internal = err.get("innererror").and_then(|i| {
        i.get("internalexception")
            .or_else(|| i.get("internalException"))
    });
    let mut message = s(internal.and_then(|i| i.get("message")));
    let mut exception_type = s(internal.and_then(|i| i.get("type")));
    let detail = err
        .get("details")
        .and_then(|d| d.as_array())
        .and_then(|d| d.first())
        .and_then(|d| d.get("message"))
        .and_then(|m| m.as_str());
    if let Some(d) = detail {
        let (dtype, dmsg) = split_detail(d);
        if message.is_none() {
            message = dmsg;
        }
        if exception_type.is_none() {
            exception_type = dtype;
        }
    }
    if message.is_none() {
        message = s(err.get("message"));
    }
    Some(ParsedError {
        code,
        message,
        exception_type,
    })
}

/// Splits a `details[].message`: `Id|Type|text`, `|Type|text`, or nested JSON
/// `{"Message":…,"TypeName":…}` / `{"ClassName":…,"Message":…}`.
fn split_detail(d: &str) -> (Option<String>, Option<String>) {
    let t = d.trim();
    if t.starts_with('{')
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(t)
    {
        let g = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        return (
            g("TypeName").or_else(|| g("ClassName")),
            g("Message").or_else(|| g("message")),
        );
    }
    let mut parts = t.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_id), Some(ty), Some(msg)) if !ty.contains(' ') => (
            Some(ty.to_owned()).filter(|x| !x.is_empty()),
            Some(msg.to_owned()),
        ),
        _ => (None, Some(t.to_owned()).filter(|x| !x.is_empty())),
    }
}

const PAGING_EXPIRED: &str = "pagination request";

/// Classifies a non-200 Exchange answer (or a batch sub-response) into an [`ExchangeError`].
pub fn classify(status: u16, headers: &ErrorHeaders, body: &[u8]) -> ExchangeError {
    let family_b = body.iter().all(|&b| b == 0 || b.is_ascii_whitespace());
    let json: Option<serde_json::Value> = if family_b {
        None
    } else {
        serde_json::from_slice(body).ok()
    };
    let parsed = json.as_ref().and_then(parse_error_value);
    let text: Option<String> = if family_b || json.is_some() {
        None
    } else {
        Some(
            String::from_utf8_lossy(&body[..body.len().min(2048)])
                .replace('\0', "")
                .trim()
                .to_owned(),
        )
        .filter(|t| !t.is_empty())
    };
    let exception_type = parsed
        .as_ref()
        .and_then(|p| p.exception_type.clone())
        .or_else(|| headers.exception_type.clone());
    let message = parsed
        .as_ref()
        .and_then(|p| p.message.clone())
        .or_else(|| text.clone())
        .unwrap_or_else(|| format!("HTTP {status} with no body"));
    let lower = message.to_ascii_lowercase();
    let ty = exception_type.as_deref().unwrap_or("").to_ascii_lowercase();

    // Family C concurrency/throttling texts are retryable whatever the status (ExoHelper).
    let throttle_text = lower.contains("maximum number of concurrent requests")
        || lower.contains("too many requests")
        || lower.contains("throttl");
    if status == 429 || (text.is_some() && throttle_text) {
        return ExchangeError::Throttled {
            retry_after: headers.retry_after,
            message,
        };
    }
    if status == 401 {
        return ExchangeError::Unauthorized {
            diagnostics: headers.diagnostics.clone(),
        };
    }
    if status == 403 {
        return ExchangeError::Forbidden {
            diagnostics: headers.diagnostics.clone(),
        };
    }
    if status >= 500 {
        return ExchangeError::Transient {
            status: Some(status),
            message,
        };
    }
    if ty.contains("notfound") || status == 404 || lower.contains("couldn't be found") {
        return ExchangeError::NotFound { message };
    }
    if ty.contains("ambiguous")
        || lower.contains("multiple users or groups matching")
        || lower.contains("matches multiple entries")
    {
        return ExchangeError::Ambiguous { message };
    }
    if !lower.contains(PAGING_EXPIRED)
        && (ty.contains("parameterbinding")
            || ty.contains("parametervalidation")
            || ty.contains("argumentexception")
            || lower.contains("a parameter cannot be found")
            || lower.contains("cannot bind parameter")
            || lower.contains("cannot process argument"))
    {
        return ExchangeError::InvalidParameter { message };
    }
    ExchangeError::Rejected {
        status,
        exception_type,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> ErrorHeaders {
        ErrorHeaders::default()
    }

    #[test]
    fn family_a_not_found_composite() {
        let body = serde_json::json!({"error":{"code":"NotFound","message":"Error executing cmdlet",
            "details":[{"code":"Context","target":"","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'x' couldn't be found on 'DC'."}],
            "innererror":{"message":"Error executing cmdlet","type":"Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
            "internalexception":{"message":"inner text","type":"Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"}}}});
        let e = classify(400, &h(), body.to_string().as_bytes());
        assert_eq!(
            e,
            ExchangeError::NotFound {
                message: "inner text".into()
            }
        );
    }

    #[test]
    fn family_a_details_only_and_nested_json() {
        let body = serde_json::json!({"error":{"code":"BadRequest","message":"Invalid Operation",
            "details":[{"code":"Client","message":"|Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException|There are multiple users or groups matching the identity"}]}});
        assert!(matches!(
            classify(400, &h(), body.to_string().as_bytes()),
            ExchangeError::Ambiguous { .. }
        ));
        let nested = serde_json::json!({"Message":"exists","TypeName":"Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException","StackTrace":null});
        let body = serde_json::json!({"error":{"code":"BadRequest","message":"Error executing cmdlet",
            "details":[{"code":"Client","message": nested.to_string()}]}});
        assert_eq!(
            classify(400, &h(), body.to_string().as_bytes()),
            ExchangeError::Rejected {
                status: 400,
                exception_type: Some(
                    "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException".into()
                ),
                message: "exists".into()
            }
        );
        let body = serde_json::json!({"error":{"code":"BadRequest","message":"A parameter cannot be found that matches parameter name 'Bogus'."}});
        assert!(matches!(
            classify(400, &h(), body.to_string().as_bytes()),
            ExchangeError::InvalidParameter { .. }
        ));
    }

    #[test]
    fn family_b_and_c() {
        assert!(matches!(
            classify(403, &h(), &[0u8; 4096]),
            ExchangeError::Forbidden { .. }
        ));
        assert!(matches!(
            classify(401, &h(), b""),
            ExchangeError::Unauthorized { .. }
        ));
        let e = classify(
            503,
            &h(),
            b"You have reached the maximum number of concurrent requests per tenant. Please wait and try again",
        );
        assert!(matches!(e, ExchangeError::Throttled { .. }), "{e:?}");
        let hh = ErrorHeaders {
            retry_after: Some(Duration::from_millis(1500)),
            ..h()
        };
        assert_eq!(
            classify(429, &hh, b"").retry_after(),
            Some(Duration::from_millis(1500))
        );
        assert!(matches!(
            classify(502, &h(), b"<html>bad gateway</html>"),
            ExchangeError::Transient { .. }
        ));
        let exp = serde_json::json!({"error":{"code":"BadRequest","message":"Expired or Invalid pagination request. Default Expiry time is 00:30:00"}});
        assert!(matches!(
            classify(400, &h(), exp.to_string().as_bytes()),
            ExchangeError::Rejected { .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_body(status in 100u16..600, body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let e = classify(status, &h(), &body);
            let _ = e.to_string();
            let _ = crate::exchange::parse_page(&body);
        }

        #[test]
        fn never_panics_on_json_ish_errors(detail in "\\PC{0,80}", ty in "[A-Za-z.|]{0,40}") {
            let body = serde_json::json!({"error": {"code": "BadRequest", "message": "Invalid Operation",
                "details": [{"code": "Client", "message": detail}],
                "innererror": {"internalexception": {"type": ty}}}});
            let _ = classify(400, &h(), body.to_string().as_bytes());
        }

        #[test]
        fn other_parsers_never_panic(s in "\\PC{0,200}") {
            let _ = crate::claims::TokenClaims::decode(&s);
            let _ = crate::consent::parse_consent_callback(&s, "state");
            let _ = crate::token::TokenError::from_response(400, None, s.as_bytes());
            let _ = crate::identity::Identity::parse(&s);
        }
    }
}
