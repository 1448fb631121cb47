//! Server-rendered pages (askama templates in `templates/`, compiled and HTML-escaped): login,
//! companies, a company's integrations, a mailbox's delegation, approvals, a request, audit.
//! Every form posts the session's CSRF token; every change goes through a core operation.
//!
//! One module per page group: [`login`], [`companies`] (and integrations), [`mailbox`],
//! [`requests`] (approvals, a request, decide, cancel, revert), [`audit`]. What they share is in
//! `super::layout`.

pub mod audit;
pub mod companies;
pub mod login;
// (msft-signin)
pub mod mailbox;
pub mod requests;
pub mod second_factor;
// (notify)
pub mod notify;

pub use audit::audit;
pub use companies::{companies, company_settings, integrations};
pub use login::{login_page, login_submit, logout, safe_next};
pub use mailbox::{mailbox, request_change};
pub use requests::{approvals, cancel, decide, request_page, revert};
