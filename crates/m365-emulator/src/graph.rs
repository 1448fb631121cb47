//! Microsoft Graph: `GET /v1.0/organization` (display name and verified domains of the token's
//! tenant), with Graph's 401 `InvalidAuthenticationToken` and 403 `Authorization_RequestDenied`
//! errors. Every request is counted in `Counters.graph_requests` as `path|status`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::entra::{TokenRejection, new_id, verify_access_token};
use crate::state::{Shared, ids};

/// Application permissions that allow reading `/organization`.
const ORGANIZATION_READERS: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1.0/organization", get(organization))
}

fn graph_error(shared: &Shared, status: StatusCode, code: &str, message: &str) -> Response {
    let request_id = new_id(shared);
    let date = shared
        .clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut response = (
        status,
        Json(json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": date,
                    "request-id": request_id,
                    "client-request-id": request_id,
                }
            }
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert("request-id", v);
    }
    if status == StatusCode::UNAUTHORIZED {
        let auth = format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"{}\"",
            shared.base_url.trim_end_matches('/'),
            ids::GRAPH_RESOURCE_APP_ID
        );
        if let Ok(v) = HeaderValue::from_str(&auth) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

fn count(shared: &Shared, path: &str, status: StatusCode) {
    *shared
        .world
        .write()
        .counters
        .graph_requests
        .entry(format!("{path}|{}", status.as_u16()))
        .or_insert(0) += 1;
}

async fn organization(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let response = organization_inner(&shared, &headers);
    count(&shared, "/v1.0/organization", response.status());
    response
}

fn organization_inner(shared: &Shared, headers: &HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = match verify_access_token(shared, authorization, ids::GRAPH_AUDIENCE) {
        Ok(c) => c,
        Err(rejection) => {
            let message = match rejection {
                TokenRejection::Missing => "Access token is empty.",
                TokenRejection::Expired { .. } | TokenRejection::NotYetValid { .. } => {
                    "Access token has expired or is not yet valid."
                }
                TokenRejection::WrongAudience { .. } => "Invalid audience.",
                TokenRejection::BadSignature => {
                    "Access token validation failure. Invalid signature."
                }
                TokenRejection::Malformed(_) | TokenRejection::WrongIssuer(_) => {
                    "Access token validation failure."
                }
            };
            return graph_error(
                shared,
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                message,
            );
        }
    };
    let org = {
        let world = shared.world.read();
        world
            .tenants
            .get(&claims.tid)
            .filter(|t| !t.deleted)
            .map(|t| (t.id, t.display_name.clone(), t.domains.clone()))
    };
    let Some((id, display_name, domains)) = org else {
        return graph_error(
            shared,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. The tenant does not exist.",
        );
    };
    if !ORGANIZATION_READERS.iter().any(|r| claims.has_role(r)) {
        return graph_error(
            shared,
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let initial = domains
        .iter()
        .position(|d| d.to_ascii_lowercase().ends_with(".onmicrosoft.com"))
        .unwrap_or(0);
    let default = domains
        .iter()
        .position(|d| !d.to_ascii_lowercase().ends_with(".onmicrosoft.com"))
        .unwrap_or(initial);
    let verified: Vec<Value> = domains
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "capabilities": if i == initial { "Email, OfficeCommunicationsOnline" } else { "Email" },
                "isDefault": i == default,
                "isInitial": i == initial,
                "name": name,
                "type": "Managed",
            })
        })
        .collect();
    let mut response = Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#organization", shared.base_url.trim_end_matches('/')),
        "value": [{
            "id": id,
            "deletedDateTime": null,
            "businessPhones": [],
            "city": null,
            "country": null,
            "countryLetterCode": "US",
            "createdDateTime": "2020-01-01T00:00:00Z",
            "displayName": display_name,
            "marketingNotificationEmails": [],
            "onPremisesLastSyncDateTime": null,
            "onPremisesSyncEnabled": null,
            "postalCode": null,
            "preferredLanguage": "en",
            "securityComplianceNotificationMails": [],
            "securityComplianceNotificationPhones": [],
            "state": null,
            "street": null,
            "technicalNotificationMails": [],
            "tenantType": "AAD",
            "directorySizeQuota": {"used": 100, "total": 300000},
            "assignedPlans": [],
            "privacyProfile": null,
            "provisionedPlans": [],
            "verifiedDomains": verified,
        }]
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&new_id(shared).to_string()) {
        response.headers_mut().insert("request-id", v);
    }
    response
}
