//! The audit log page: filters, and the chain check on request.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use exogate_core::CoreError;

use crate::web::WebState;
use crate::web::common::{AuditQuery, chain_check, filtered_audit};
use crate::web::error::PageResult;
use crate::web::layout::{Nav, PageAuth};
use crate::web::view::AuditView;

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    nav: Option<Nav>,
    /// Whether the viewer may verify the chain (`exogate_core::ops::audit::may_verify`).
    can_verify: bool,
    /// Whether a verification was asked for with `verify=1` (never run on a plain view), and
    /// its result.
    chain_checked: bool,
    chain_ok: bool,
    chain_text: String,
    f_company: String,
    f_actor: String,
    f_kind: String,
    f_from: String,
    f_to: String,
    filter_error: Option<String>,
    events: Vec<AuditView>,
    // (cli-help) When the page was made, for the events' relative times.
    now: exogate_core::Timestamp,
}

pub async fn audit(
    State(st): State<WebState>,
    auth: PageAuth,
    Query(q): Query<AuditQuery>,
) -> PageResult<AuditPage> {
    let (events, filter_error) = match filtered_audit(&st, &auth.0, &q).await {
        Ok((e, _)) => (e, None),
        Err(e @ (CoreError::Invalid { .. } | CoreError::Forbidden { .. })) => {
            (Vec::new(), Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    // Who may verify is the core's rule (managers and above); the whole chain is walked only
    // when someone asks for it.
    let can_verify = exogate_core::ops::audit::may_verify(&auth.0.actor.user).is_ok();
    let chain_checked = can_verify && q.verify == "1";
    let (chain_ok, chain_text) = if chain_checked {
        let (ok, text, _) = chain_check(&st, &auth.0.actor).await?;
        (ok, text)
    } else {
        (false, String::new())
    };
    Ok(AuditPage {
        nav: auth.nav(),
        can_verify,
        chain_checked,
        chain_ok,
        chain_text,
        f_company: q.company,
        f_actor: q.actor,
        f_kind: q.kind,
        f_from: q.from,
        f_to: q.to,
        filter_error,
        events,
        now: st.app.clock.now(),
    })
}
