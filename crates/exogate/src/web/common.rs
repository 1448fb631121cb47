//! What the pages and the JSON API share: new request ids, the company lookup for request
//! lists, the session's consent problem, the audit filters and the chain check.

use std::collections::HashMap;

use axum::http::HeaderValue;
use exogate_core::audit::AuditKind;
use exogate_core::ops::audit as audit_ops;
use exogate_core::{Company, CompanyId, CoreError, RequestId};
use serde::Deserialize;

use super::WebState;
use super::auth::Auth;
use super::view::{self, AuditView};

/// A new request id: UUIDv7, so ids sort by creation time.
pub(crate) fn new_request_id() -> RequestId {
    RequestId::from_uuid(uuid::Uuid::now_v7())
}

/// The consent problem recorded in this session for `company`, if any (e.g. `wrong_tenant`).
pub(crate) fn consent_problem(auth: &Auth, company: &CompanyId) -> Option<String> {
    let s = auth.session.as_ref()?;
    let o = s.data.consent.get(company.as_str())?;
    (o.outcome == "wrong_tenant").then(|| o.outcome.clone())
}

pub(crate) async fn company_map(st: &WebState) -> Result<HashMap<CompanyId, Company>, CoreError> {
    Ok(st
        .app
        .store
        .list_companies()
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect())
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, alias = "since")]
    pub from: String,
    #[serde(default, alias = "until")]
    pub to: String,
    #[serde(default)]
    pub request: String,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Keyset paging: only events with a smaller `seq` (the `next` of the previous page).
    #[serde(default)]
    pub before: Option<i64>,
    /// `1`: verify the whole chain on this view (managers and above).
    #[serde(default)]
    pub verify: String,
}

/// Lists audit events for the filters (newest first) through the core operation: the filters
/// run in the store before the limit. Also answers the `before` cursor of the next page.
pub(crate) async fn filtered_audit(
    st: &WebState,
    auth: &Auth,
    q: &AuditQuery,
) -> Result<(Vec<AuditView>, Option<i64>), CoreError> {
    use exogate_core::audit::{AuditFilter, DayEnd, parse_time_bound};
    let ctx = st.app.ctx();
    let company = match q.company.trim() {
        "" => None,
        c => Some(CompanyId::parse(c)?),
    };
    let request = match q.request.trim() {
        "" => None,
        r => Some(RequestId::parse(r)?),
    };
    let kind = q.kind.trim();
    if !kind.is_empty() && AuditKind::parse(kind).is_none() {
        return Err(CoreError::invalid(
            "kind",
            format!("`{}` is not an audit event kind", view::shown(kind)),
        ));
    }
    let actor = q.actor.trim();
    let filter = AuditFilter {
        company,
        request,
        kind: (!kind.is_empty()).then(|| kind.to_owned()),
        actor: (!actor.is_empty()).then(|| actor.to_owned()),
        since: parse_time_bound("from", &q.from, DayEnd::Start)?,
        until: parse_time_bound("to", &q.to, DayEnd::End)?,
        before_seq: q.before,
        limit: q.limit.unwrap_or(1000),
    };
    let page = audit_ops::search(ctx, &auth.actor, filter).await?;
    Ok((page.events.iter().map(AuditView::of).collect(), page.next))
}

/// The chain check for `actor` (managers and above, the core's rule) as (intact, text, JSON).
pub(crate) async fn chain_check(
    st: &WebState,
    actor: &exogate_core::Actor,
) -> Result<(bool, String, serde_json::Value), CoreError> {
    let who = audit_ops::Verifier::Person(actor);
    Ok(match audit_ops::verify_as(st.app.ctx(), who).await? {
        audit_ops::Verification::Intact(r) => (
            true,
            format!(
                "Audit chain intact: {} events verified, head #{}.",
                r.events, r.last_seq
            ),
            serde_json::json!({ "intact": true, "events": r.events, "last_seq": r.last_seq, "last_hash": r.last_hash }),
        ),
        audit_ops::Verification::Broken(b) => (
            false,
            format!("AUDIT CHAIN BROKEN: {b}"),
            serde_json::json!({ "intact": false, "break": b.to_string() }),
        ),
    })
}

/// Ends the caller's session, if any, and answers the `Set-Cookie` value that clears it.
pub(crate) async fn end_session(st: &WebState, auth: &Auth) -> Result<HeaderValue, CoreError> {
    if let Some(s) = &auth.session {
        st.app.store.delete_session(&s.id_hash).await?;
    }
    Ok(super::auth::session_cookie(st.app.secure_cookies, None))
}
