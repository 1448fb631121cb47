//! Cmdlet errors and the three error-body families of `docs/MICROSOFT.md#errors`: A (OData JSON
//! with `details` and `innererror.internalexception`), B (a NUL-byte body) and C (plain text).

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::state::{DetailsFormat, Knobs};

/// Which status family a cmdlet error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400 BadRequest.
    BadRequest,
    /// ManagementObjectNotFoundException: 404 or 400 per the `not_found_status` knob.
    NotFound,
    /// 429 (family A variant, used for the rate budget).
    Throttled,
    /// 500.
    Internal,
}

/// A cmdlet failure, rendered as a family-A body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exception_type}: {message}")]
pub struct CmdletError {
    pub kind: ErrorKind,
    /// Full .NET exception type, e.g. `Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException`.
    pub exception_type: &'static str,
    pub message: String,
    /// `details[0].code`: `Context` (directory errors) or `Client` (parameter errors).
    pub details_code: &'static str,
}

pub const NOT_FOUND_TYPE: &str =
    "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException";
pub const AMBIGUOUS_TYPE: &str =
    "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException";
pub const PARAMETER_TYPE: &str = "System.Management.Automation.ParameterBindingException";
pub const INVALID_OPERATION_TYPE: &str = "System.InvalidOperationException";
pub const ODATA_TYPE: &str = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException";
/// The fake domain controller named in not-found messages.
pub const DC: &str = "EMUPR01A001DC001.EMUPR01A001.PROD.OUTLOOK.COM";

impl CmdletError {
    pub fn bad_request(exception_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            exception_type,
            message: message.into(),
            details_code: "Client",
        }
    }

    pub fn parameter(message: impl Into<String>) -> Self {
        Self::bad_request(PARAMETER_TYPE, message)
    }

    pub fn invalid_operation(message: impl Into<String>) -> Self {
        Self::bad_request(INVALID_OPERATION_TYPE, message)
    }

    /// `The operation couldn't be performed because object '<id>' couldn't be found on '<dc>'.`
    pub fn not_found(identity: &str) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            exception_type: NOT_FOUND_TYPE,
            message: format!(
                "The operation couldn't be performed because object '{identity}' couldn't be found on '{DC}'."
            ),
            details_code: "Context",
        }
    }

    /// The not-found error of a recipient-valued parameter (User, Trustee, delegates).
    pub fn recipient_not_found(identity: &str) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            exception_type: NOT_FOUND_TYPE,
            message: format!(
                "Couldn't find object \"{identity}\". Please make sure that it was spelled correctly or specify a different object."
            ),
            details_code: "Context",
        }
    }

    pub fn ambiguous(identity: &str) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            exception_type: AMBIGUOUS_TYPE,
            message: format!(
                "The operation couldn't be performed because '{identity}' matches multiple entries."
            ),
            details_code: "Context",
        }
    }

    pub fn ambiguous_principal(identity: &str) -> Self {
        Self {
            kind: ErrorKind::BadRequest,
            exception_type: AMBIGUOUS_TYPE,
            message: format!(
                "There are multiple users or groups matching the identity \"{identity}\". Please specify a unique value."
            ),
            details_code: "Context",
        }
    }

    /// The paging cursor error (`docs/MICROSOFT.md#paging`).
    pub fn bad_skiptoken() -> Self {
        Self::bad_request(
            ODATA_TYPE,
            "Expired or Invalid pagination request. Default Expiry time is 00:30:00",
        )
    }

    pub fn status(&self, knobs: &Knobs) -> StatusCode {
        match self.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => {
                StatusCode::from_u16(knobs.not_found_status).unwrap_or(StatusCode::NOT_FOUND)
            }
            ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short class name sent in `x-ExceptionType`.
    pub fn short_type(&self) -> &'static str {
        self.exception_type
            .rsplit('.')
            .next()
            .unwrap_or(self.exception_type)
    }

    /// The family-A JSON body.
    pub fn body(&self, knobs: &Knobs) -> Value {
        let status = self.status(knobs);
        let code = match status.as_u16() {
            400 => "BadRequest",
            403 => "Forbidden",
            404 => "NotFound",
            429 => "TooManyRequests",
            _ => "InternalServerError",
        };
        let details_message = match knobs.details_format {
            DetailsFormat::IdTypeMessage => {
                format!(
                    "{}|{}|{}",
                    err_id(self.exception_type),
                    self.exception_type,
                    self.message
                )
            }
            DetailsFormat::EmptyIdTypeMessage => {
                format!("|{}|{}", self.exception_type, self.message)
            }
            DetailsFormat::NestedJson => json!({
                "Message": self.message,
                "TypeName": self.exception_type,
                "StackTrace": null,
                "InnerError": null,
            })
            .to_string(),
        };
        json!({
            "error": {
                "code": code,
                "message": knobs.error_message,
                "details": [{
                    "code": self.details_code,
                    "target": "",
                    "message": details_message,
                }],
                "innererror": {
                    "message": knobs.error_message,
                    "type": ODATA_TYPE,
                    "internalexception": {
                        "message": self.message,
                        "type": self.exception_type,
                    },
                },
            },
            "adminapi.warnings@odata.type": "#Collection(String)",
            "@adminapi.warnings": [],
        })
    }
}

/// The `Ex…` error id before the exception type in `details[0].message`.
fn err_id(exception_type: &str) -> String {
    if exception_type == NOT_FOUND_TYPE {
        return "Ex6F9304".to_owned();
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(exception_type.as_bytes());
    format!("Ex{}", hex::encode_upper(&h[..3]))
}

/// Family B: 403 with a run of NUL bytes, no content type, optionally declared gzip.
pub fn nul_forbidden(declare_gzip: bool) -> Response<Body> {
    let mut r = Response::new(Body::from(vec![0u8; 4096]));
    *r.status_mut() = StatusCode::FORBIDDEN;
    if declare_gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Family C: a plain-text body.
pub fn plain_text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The concurrency-cap message (family C of `docs/MICROSOFT.md#errors`).
pub const CONCURRENCY_MESSAGE: &str = "You have reached the maximum number of concurrent requests per tenant. Please wait and try again.";
