//! A company (a customer of the MSP) with its Microsoft 365 connection and Exchange Admin
//! status.

use exogate_core::{Company, ExchangeAdminState};
use serde::Serialize;

use super::{shown, shown_message, ts};
use crate::web::view::help_for;

fn colour_name(s: ExchangeAdminState) -> &'static str {
    exogate_core::ops::companies::badge_colour(Some(s))
}

/// The state of a connected company whose Exchange Admin status was never checked.
pub const NEVER_CHECKED: &str = "unknown";

/// The Exchange Admin badge of a company, as shown.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    /// `not_connected`, `unknown` (never checked) or an Exchange Admin state (`configured`,
    /// `role_missing`, …).
    pub state: String,
    pub badge: String,
    /// `red`, `amber`, `green` or `grey`.
    pub colour: String,
    /// What to do about it.
    pub fix: String,
    /// Troubleshooting hints for this state.
    pub help: Vec<String>,
    pub checked_at: Option<String>,
    pub checked_at_ms: Option<i64>,
    /// The last check failed (429/5xx/network); the badge shows the last good state.
    pub check_failed: bool,
    pub last_good_at: Option<String>,
    /// Evidence of the last check (AADSTS code, HTTP status, roles).
    pub detail: String,
    /// Set when the latest consent attempt in this session went wrong (e.g. `wrong_tenant`).
    pub consent_problem: Option<String>,
}

impl StatusView {
    /// A status with no check behind it.
    fn unchecked(state: &str, badge: &str, fix: &str) -> Self {
        Self {
            state: state.into(),
            badge: badge.into(),
            colour: exogate_core::ops::companies::badge_colour(None).into(),
            fix: fix.into(),
            help: help_for(state),
            checked_at: None,
            checked_at_ms: None,
            check_failed: false,
            last_good_at: None,
            detail: String::new(),
            consent_problem: None,
        }
    }

    pub fn of(company: &Company) -> Self {
        if company.connection.is_none() {
            return Self::unchecked(
                "not_connected",
                "Not connected",
                "Connect Microsoft 365 first.",
            );
        }
        let Some(rec) = &company.exchange_status else {
            return Self::unchecked(NEVER_CHECKED, "Not checked yet", "Click Re-check.");
        };
        let shown = rec.shown_state();
        Self {
            checked_at: Some(ts(rec.checked_at)),
            checked_at_ms: Some(rec.checked_at.unix_millis()),
            check_failed: rec.check_failed(),
            last_good_at: rec.last_good_at.map(ts),
            detail: shown_message(&rec.detail),
            ..Self::unchecked(shown.as_str(), shown.badge(), shown.fix()).coloured(shown)
        }
    }

    fn coloured(mut self, s: ExchangeAdminState) -> Self {
        self.colour = colour_name(s).into();
        self
    }

    /// Whether reads and change requests can work now.
    pub fn ready(&self) -> bool {
        ExchangeAdminState::parse(&self.state).is_some_and(ExchangeAdminState::allows_changes)
    }

    /// Shows the wrong-tenant state when the latest consent attempt in this session went to
    /// another tenant and the stored check does not show a working setup.
    pub fn with_consent_problem(mut self, problem: Option<&str>) -> Self {
        if let Some(p) = problem {
            self.consent_problem = Some(p.to_owned());
            if p == "wrong_tenant" && self.state != "configured" {
                let s = ExchangeAdminState::WrongTenant;
                let fresh = Self::unchecked(s.as_str(), s.badge(), s.fix()).coloured(s);
                self.state = fresh.state;
                self.badge = fresh.badge;
                self.colour = fresh.colour;
                self.fix = fresh.fix;
                self.help = fresh.help;
            }
        }
        self
    }
}

/// A company and its connection.
#[derive(Clone, Debug, Serialize)]
pub struct CompanyView {
    pub id: String,
    pub name: String,
    pub connected: bool,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub default_domain: Option<String>,
    pub connected_at: Option<String>,
    pub separate_approver: bool,
    pub status: StatusView,
}

impl CompanyView {
    pub fn of(c: &Company) -> Self {
        let conn = c.connection.as_ref();
        Self {
            id: c.id.to_string(),
            name: shown(&c.name),
            connected: conn.is_some(),
            tenant_id: conn.map(|x| x.tenant_id.to_string()),
            tenant_name: conn.map(|x| shown(&x.display_name)),
            default_domain: conn.map(|x| shown(&x.default_domain)),
            connected_at: conn.map(|x| ts(x.connected_at)),
            separate_approver: c.separate_approver,
            status: StatusView::of(c),
        }
    }
}
