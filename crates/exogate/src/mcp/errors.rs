//! Failures as tool results every MCP client can read: `isError: true`, one text content
//! `[code] message` an agent can act on, and `_meta` `{"code", …details}` with the stable core
//! error code. No `structuredContent`: clients check it against the tool's output schema, which
//! describes a success.

use exogate_core::{ConflictReason, CoreError, Denial, Entity, ExchangeAdminState};
use rmcp::model::{CallToolResult, ContentBlock, MetaObject};
use serde_json::{Value, json};

use exogate_core::text::{escape_hidden, tenant_text};

/// Longest error message returned (characters).
const MAX_MESSAGE: usize = 2000;

/// A tool error result: the text `[code] message`, and `code` with the `extra` fields in `_meta`.
pub fn tool_error(code: &str, message: &str, extra: Value) -> CallToolResult {
    let mut message = escape_hidden(message);
    if message.chars().count() > MAX_MESSAGE {
        message = message.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    let mut meta = serde_json::Map::new();
    meta.insert("code".into(), json!(code));
    if let Value::Object(more) = extra {
        meta.extend(more);
    }
    let mut r = CallToolResult::error(vec![ContentBlock::text(format!("[{code}] {message}"))]);
    r.meta = Some(MetaObject(meta));
    r
}

/// `rate_limited`: the token, or the tokens naming one company, made too many calls.
pub fn rate_limited(e: &crate::limits::Limited) -> CallToolResult {
    tool_error(
        e.code(),
        &e.to_string(),
        json!({ "retry_after_secs": e.retry_after_secs(), "scope": e.scope() }),
    )
}

/// `unauthenticated`: the token is missing, unknown or revoked, or its user is disabled.
pub fn unauthenticated(detail: &str) -> CallToolResult {
    tool_error(
        "unauthenticated",
        &format!(
            "the API token was not accepted: {detail}. Ask an exogate user for a valid token."
        ),
        json!({}),
    )
}

/// The companies shown in "unknown company" errors.
pub struct KnownCompany {
    pub id: String,
    pub name: String,
}

/// Maps a core error to an actionable tool error. `company` is what the caller passed (if any);
/// `known` the companies the caller can see (used for unknown-company errors).
pub fn core_error(e: &CoreError, company: Option<&str>, known: &[KnownCompany]) -> CallToolResult {
    // Echoes of what the caller sent are escaped and capped like tenant text.
    let company_shown = company.map(tenant_text).unwrap_or_default();
    match e {
        CoreError::NotFound {
            what: Entity::Company,
            ..
        }
        | CoreError::Forbidden {
            reason: Denial::NotEntitled,
        } => unknown_company(&company_shown, known),
        CoreError::Invalid {
            field: "company_id",
            ..
        } => unknown_company(&company_shown, known),
        CoreError::NotConfigured { state } => not_configured(e.code(), &company_shown, *state),
        CoreError::Conflict {
            reason: ConflictReason::NotConnected,
        } => tool_error(
            e.code(),
            &format!(
                "company `{company_shown}` is not connected to Microsoft 365. Fix: a person connects it on the company's integrations page in exogate."
            ),
            json!({ "company": company_shown }),
        ),
        CoreError::NotFound {
            what: what @ (Entity::Mailbox | Entity::Trustee),
            id,
        } => tool_error(
            e.code(),
            &format!(
                "{} `{}` was not found in company `{company_shown}`. Check the spelling, or pass the full email address or UPN (for example `name@{{default_domain}}` from list_companies).",
                what.as_str(),
                tenant_text(id)
            ),
            json!({ "identity": tenant_text(id) }),
        ),
        CoreError::Conflict {
            reason: ConflictReason::Ambiguous { candidates },
        } => tool_error(
            e.code(),
            &format!(
                "the identity matches {candidates} recipients in company `{company_shown}`. Pass the full email address, UPN or object id instead of a name or alias."
            ),
            json!({ "candidates": candidates }),
        ),
        CoreError::NotFound {
            what: Entity::Request,
            id,
        } => tool_error(
            e.code(),
            &format!(
                "no approval request `{}` is visible to you. Pass the request_id a write tool returned.",
                tenant_text(id)
            ),
            json!({}),
        ),
        CoreError::Forbidden { reason } => {
            let hint = match reason {
                Denial::RoleTooLow { needed } => {
                    format!(" Your exogate user needs the `{needed}` role; ask an exogate admin.")
                }
                Denial::UserDisabled | Denial::TokenRevoked => {
                    " Ask an exogate admin for a valid token.".to_owned()
                }
                _ => String::new(),
            };
            tool_error(e.code(), &format!("{e}.{hint}"), json!({}))
        }
        CoreError::Invalid { field, reason } => tool_error(
            e.code(),
            &format!("invalid `{field}`: {reason}. See the tool's input schema for what to pass."),
            json!({ "field": field }),
        ),
        CoreError::Conflict {
            reason: ConflictReason::Rejected { message },
        } => tool_error(
            e.code(),
            &format!(
                "Exchange refused: {}",
                exogate_core::text::tenant_text(message)
            ),
            json!({}),
        ),
        CoreError::Conflict {
            reason: ConflictReason::AlreadyInState { what },
        } => tool_error(
            e.code(),
            &format!(
                "nothing to change: {}. No request was made; check the current state with a read tool.",
                tenant_text(what)
            ),
            json!({}),
        ),
        // The driver's text can name hosts, databases and users: the log has it, the agent a
        // fixed message.
        CoreError::Unavailable { .. } if e.is_database_unavailable() => {
            tracing::warn!(error = %e, "database unavailable");
            tool_error(
                "database_unavailable",
                "The database is unavailable; nothing was changed. Retry shortly.",
                json!({ "retry_after_secs": 2 }),
            )
        }
        CoreError::Unavailable { .. } => tool_error(
            e.code(),
            &format!("{e}. Retry in a minute; nothing was changed."),
            json!({ "retry_after_secs": 60 }),
        ),
        CoreError::Internal(_) => {
            tracing::error!(error = ?e, "internal error in an MCP tool");
            tool_error(
                e.code(),
                "internal error in exogate; nothing was changed. Retry later or tell an exogate admin.",
                json!({}),
            )
        }
        CoreError::Conflict { .. } | CoreError::NotFound { .. } => {
            tool_error(e.code(), &e.to_string(), json!({}))
        }
        // (inventory-truth)
        CoreError::NotFoundIn { id, .. } => tool_error(
            e.code(),
            &format!(
                "{}. Check the spelling, or pass the full email address, UPN or object id.",
                tenant_text(&e.to_string())
            ),
            json!({ "identity": tenant_text(id) }),
        ),
    }
}

fn unknown_company(company: &str, known: &[KnownCompany]) -> CallToolResult {
    let list = if known.is_empty() {
        "You are not entitled to any company; ask an exogate admin.".to_owned()
    } else {
        format!(
            "Companies you can use: {}.",
            known
                .iter()
                .map(|k| format!("`{}` ({})", k.id, k.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    tool_error(
        "company_not_found",
        &format!(
            "unknown company `{company}`. {list} Pass the `id`, as list_companies returns it."
        ),
        json!({
            "company": company,
            "known_companies": known.iter().map(|k| json!({ "id": k.id, "name": k.name })).collect::<Vec<_>>(),
        }),
    )
}

fn not_configured(code: &str, company: &str, state: ExchangeAdminState) -> CallToolResult {
    tool_error(
        code,
        &format!(
            "Exchange Admin is not ready for company `{company}`: the badge reads \"{}\" ({}). Fix: {} A person must do this in exogate and the customer's tenant; retry afterwards.",
            state.badge(),
            state.as_str(),
            state.fix()
        ),
        json!({
            "company": company,
            "state": state.as_str(),
            "badge": state.badge(),
            "fix": state.fix(),
        }),
    )
}
