//! What only the pages and the status JSON need beside the shared views ([`crate::views`], which
//! the pages render too): relative ages and the troubleshooting texts per Exchange Admin state.
//! The views (and the sanitizer helpers every view uses) are re-exported here for the pages.

use exogate_core::Timestamp;

pub use crate::views::{
    AuditEventView as AuditView, CompanyView, IdentityView, RequestView, StatusView, name_warnings,
    shown, shown_identity, shown_message,
};

/// "3 min", "2 h", "5 d".
pub fn age(now: Timestamp, then: Timestamp) -> String {
    let secs = (now.unix_millis() - then.unix_millis()).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// Troubleshooting text per state (the fixes of `docs/DOMAIN.md#exchange-admin-status`, and more).
pub fn help_for(state: &str) -> Vec<String> {
    let v: &[&str] = match state {
        "not_connected" => &[
            "Connect Microsoft 365 first: sign in as a Global Administrator of the customer's tenant and accept the connect app's permissions.",
        ],
        "not_configured" => &[
            "Click Authorize. A new tab opens on Microsoft's admin consent page.",
            "Sign in as a Global Administrator of the customer's tenant, not of your own (MSP) tenant.",
            "Review and accept the permissions (they include Exchange.ManageAsApp), then switch back to this tab: it re-checks by itself.",
        ],
        "role_missing" => &[
            "Badge stays red after authorizing: the Exchange Administrator role is not assigned yet (Step 2).",
            "In the customer's Entra admin centre: Identity > Roles & admins > Exchange Administrator (or, least privilege, Exchange Recipient Administrator) > Add assignments > select the exogate Exchange app > Add.",
            "Wait 1-2 minutes for the permission to propagate, then click Re-check.",
            "Delegation tools return errors until this is done.",
        ],
        "propagating" => &[
            "The role is assigned, but Microsoft has not propagated it to Exchange yet. This usually takes 1-2 minutes (sometimes up to an hour).",
            "The page re-checks by itself; you can also click Re-check.",
        ],
        "configured" => &[
            "Exchange Admin works: the app holds Exchange.ManageAsApp and a directory role, and a probe cmdlet answered.",
        ],
        "tenant_not_found" => &[
            "\"Tenant ID not found\": Microsoft does not know this tenant any more (deleted, or the ID is wrong).",
            "Disconnect and reconnect the Microsoft 365 integration, then try again.",
        ],
        "wrong_tenant" => &[
            "Consent went to another tenant: the person who signed in is an administrator of a different directory (often the MSP's own tenant).",
            "Click Authorize again and sign in as a Global Administrator of the customer's tenant, not your own.",
            "Delegation tools return errors while the admin consent is granted in the wrong tenant.",
        ],
        "app_credentials_invalid" => &[
            "Microsoft rejected exogate's own app credentials (AADSTS7000215 / 7000222 / 700027).",
            "An administrator of the MSP must renew the app's client secret or certificate in exogate's configuration.",
        ],
        "check_failed" => &[
            "Microsoft could not be reached or throttled the check (429, 5xx or network). It is retried; the badge shows the last good result.",
        ],
        _ => &[],
    };
    v.iter().map(|s| (*s).to_owned()).collect()
}
