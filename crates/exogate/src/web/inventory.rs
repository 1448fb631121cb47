//! The delegation inventory in the web app and the JSON API: what a user can open across the
//! companies the caller is entitled to, who can open a mailbox, exports (CSV and JSON), "Sync
//! now" with live progress, and offboarding (one approval request removing everything a user
//! holds in a company).
//!
//! Sweeps started here run as background tasks of this server. Their progress lives in a
//! [`SyncBoard`] (per replica); `GET /api/v1/inventory/status?after=N` long-polls it, so a page
//! follows a sweep live without hammering the server. The store's own sweep state (running,
//! ok, failed, with its as-of time) stays the truth every replica shares.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use exogate_core::inventory::InventoryRow;
use exogate_core::model::IdentityInput;
use exogate_core::ops::inventory::{self as inv, CompanyInventory, OffboardInput};
use exogate_core::{Actor, CompanyId, CoreError, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::WebState;
use super::api::{ApiAuth, Body, company_named};
use super::common::new_request_id;
use super::error::{ApiError, ApiResult, PageError, PageResult};
use super::inventory_export::{csv_headers, shown_row};
use super::layout::{Nav, PageAuth};
use super::view;
use crate::inventory::{Progress, ProgressFn};
use crate::inventory_view;
use crate::views::{self, CompanyInventoryView};

// ---------------------------------------------------------------------------------------------
// Live sync progress
// ---------------------------------------------------------------------------------------------

/// One company's sweep as this server runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    pub running: bool,
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Why the sweep stopped, when it failed.
    pub error: Option<String>,
    /// Mailboxes and rows the sweep wrote, once finished.
    pub mailboxes: u64,
    pub rows: u64,
}

impl SyncProgress {
    fn json(&self) -> Value {
        json!({
            "running": self.running,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "started_at": self.started_at.to_string(),
            "finished_at": self.finished_at.map(|t| t.to_string()),
            "error": self.error,
            "mailboxes": self.mailboxes,
            "rows": self.rows,
        })
    }
}

/// The sweeps this server started, and a version that changes with every update (for
/// long-polling).
pub struct SyncBoard {
    state: Mutex<BTreeMap<CompanyId, SyncProgress>>,
    version: watch::Sender<u64>,
    /// Sweeps run at most [`PARALLEL_SWEEPS`] at a time; the others wait (phase `queued`).
    slots: Arc<tokio::sync::Semaphore>,
}

/// Sweeps this server runs at once ("Sync all" queues the rest). The Exchange client's
/// per-tenant and global limiters pace the calls within them.
pub const PARALLEL_SWEEPS: usize = 4;

impl Default for SyncBoard {
    fn default() -> Self {
        Self {
            state: Mutex::new(BTreeMap::new()),
            version: watch::Sender::new(0),
            slots: Arc::new(tokio::sync::Semaphore::new(PARALLEL_SWEEPS)),
        }
    }
}

impl SyncBoard {
    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    fn update(&self, company: &CompanyId, f: impl FnOnce(&mut SyncProgress)) {
        if let Ok(mut m) = self.state.lock()
            && let Some(p) = m.get_mut(company)
        {
            f(p);
        }
        self.bump();
    }

    /// Marks `company` as syncing; false if a sweep of it is already running here.
    fn claim(&self, company: &CompanyId, now: Timestamp) -> bool {
        let Ok(mut m) = self.state.lock() else {
            return false;
        };
        if m.get(company).is_some_and(|p| p.running) {
            return false;
        }
        m.insert(
            company.clone(),
            SyncProgress {
                running: true,
                phase: "queued",
                done: 0,
                total: 0,
                started_at: now,
                finished_at: None,
                error: None,
                mailboxes: 0,
                rows: 0,
            },
        );
        drop(m);
        self.bump();
        true
    }

    /// The progress of `company`'s latest sweep started here.
    pub fn get(&self, company: &CompanyId) -> Option<SyncProgress> {
        self.state.lock().ok()?.get(company).cloned()
    }

    /// Every company's progress, at once.
    pub fn snapshot(&self) -> BTreeMap<CompanyId, SyncProgress> {
        self.state.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Waits until the version is above `after`, or `limit` passed. Returns the version.
    pub async fn wait_after(&self, after: u64, limit: Duration) -> u64 {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|v| *v > after)).await;
        *rx.borrow()
    }
}

/// Longest a status long-poll waits.
const LONG_POLL: Duration = Duration::from_secs(20);

/// Starts a background sweep of each company (skipping those already sweeping here). The
/// caller must have been authorized for each. Returns (started, already running).
fn start_sweeps(
    st: &WebState,
    actor: &Actor,
    companies: Vec<CompanyId>,
) -> (Vec<CompanyId>, Vec<CompanyId>) {
    let mut started = Vec::new();
    let mut running = Vec::new();
    for company in companies {
        if !st.sync.claim(&company, st.app.clock.now()) {
            running.push(company);
            continue;
        }
        let board = st.sync.clone();
        let app = st.app.clone();
        let actor = actor.clone();
        let id = company.clone();
        tokio::spawn(async move {
            // Closed never: the board owns the semaphore.
            let _slot = board.slots.clone().acquire_owned().await.ok();
            board.update(&id, |s| s.phase = "starting");
            let sink = board.clone();
            let progress: ProgressFn = Arc::new(move |c: &CompanyId, p: Progress| {
                sink.update(c, |s| {
                    s.phase = p.phase.as_str();
                    s.done = p.done;
                    s.total = p.total;
                });
            });
            let result = crate::inventory::sync_company(&app, &actor, &id, &progress).await;
            let now = app.clock.now();
            match &result {
                Ok(report) => {
                    tracing::info!(company = %id, mailboxes = report.mailboxes, rows = report.rows, "inventory sweep finished")
                }
                Err(e) => tracing::warn!(company = %id, error = %e, "inventory sweep failed"),
            }
            board.update(&id, |s| {
                s.running = false;
                s.finished_at = Some(now);
                match result {
                    Ok(r) => {
                        s.phase = "done";
                        s.mailboxes = r.mailboxes;
                        s.rows = r.rows;
                        s.done = s.total.max(r.mailboxes);
                        s.total = s.total.max(r.mailboxes);
                    }
                    Err(e) => {
                        s.phase = "failed";
                        s.error = Some(view::shown_message(&e.to_string()));
                    }
                }
            });
        });
        started.push(company);
    }
    (started, running)
}

/// The companies "Sync all" sweeps for `actor`: connected, and the actor may ask for changes.
async fn sweepable(st: &WebState, actor: &Actor) -> Result<Vec<CompanyId>, CoreError> {
    let actor = &exogate_core::ops::refresh_actor(st.app.ctx(), actor).await?;
    let companies = st.app.store.list_companies().await?;
    // As the CLI's `sync --all`: companies whose Exchange Admin is not configured are left out
    // (their badge says what to fix), so Sync all never fails for them.
    let may_sweep = |c: &exogate_core::Company| {
        crate::inventory::skip_reason(c).is_none()
            && exogate_core::policy::can_request(&actor.user, &c.id).is_ok()
    };
    Ok(companies
        .into_iter()
        .filter(may_sweep)
        .map(|c| c.id)
        .collect())
}

/// Authorizes and starts the sweeps asked for: one company, or all the actor may sweep.
async fn sync(
    st: &WebState,
    actor: &Actor,
    company: Option<&str>,
) -> Result<(Vec<CompanyId>, Vec<CompanyId>), CoreError> {
    let companies = match company.map(str::trim).filter(|c| !c.is_empty()) {
        Some(raw) => {
            let id = exogate_core::ops::companies::resolve(st.app.ctx(), actor, raw).await?;
            inv::authorize_sweep(st.app.ctx(), actor, &id).await?;
            vec![id]
        }
        None => sweepable(st, actor).await?,
    };
    Ok(start_sweeps(st, actor, companies))
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// The web's advice for a company never swept.
const NEVER_SWEPT: &str = "unknown: not swept yet; press Sync now on the Inventory page";

/// What to warn about a company, worded for the web.
fn warning(c: &CompanyInventory) -> Option<String> {
    views::inventory_warning(c, NEVER_SWEPT)
}

/// A company's inventory with every tenant string sanitized by the core's sanitizer (names,
/// addresses, object ids, raw trustees, SIDs, the sweep's error): what pages and the API (JSON
/// and CSV, for people and tokens alike) render.
fn shown_part(c: &CompanyInventory) -> CompanyInventory {
    let mut c = c.clone();
    c.company_name = view::shown(&c.company_name);
    if let Some(s) = c.status.as_mut() {
        s.sweep_error = s.sweep_error.as_deref().map(view::shown_message);
    }
    for r in &mut c.rows {
        shown_row(r);
    }
    c
}

/// One company's part as JSON (the CLI's `--json` shape), with the web's warning.
fn part_json(c: &CompanyInventory) -> CompanyInventoryView {
    CompanyInventoryView::of(c, NEVER_SWEPT)
}

// (timed-grants)
/// [`part_json`] with each timed grant's end, joined from the company's scheduled removals.
async fn part_json_with_ends(st: &WebState, c: &CompanyInventory) -> CompanyInventoryView {
    let mut v = part_json(c);
    let Ok(removals) = exogate_core::ops::timed::scheduled_removals(st.app.ctx(), &c.company).await
    else {
        return v;
    };
    if let Some(rows) = v.rows.as_mut() {
        for (row, r) in rows.iter_mut().zip(&c.rows) {
            row.ends_at = r
                .trustee
                .identity
                .as_ref()
                .and_then(|id| {
                    exogate_core::ops::timed::end_of(
                        &removals,
                        &r.mailbox.object_id,
                        &id.object_id,
                        r.right,
                    )
                })
                .map(|t| t.to_string());
        }
    }
    v
}

/// One company in the status answer: its state without rows, and the live progress of a sweep
/// this server runs.
#[derive(Serialize)]
struct StatusEntry {
    #[serde(flatten)]
    part: CompanyInventoryView,
    sync: Option<Value>,
}

#[derive(Deserialize, Default)]
pub struct ExportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    company: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

fn format_of(q: &ExportQuery) -> Result<Format, ApiError> {
    match q.format.as_deref().unwrap_or("json") {
        "json" | "" => Ok(Format::Json),
        "csv" => Ok(Format::Csv),
        other => Err(CoreError::invalid(
            "format",
            format!("`{}` is not a format: use json or csv", view::shown(other)),
        )
        .into()),
    }
}

/// A CSV download, safe for spreadsheets (see [`inventory_view::csv`]).
/// `searched` is the identity looked for, named on every line (inventory-truth).
fn csv_response(name: &str, parts: &[CompanyInventory], searched: Option<&str>) -> Response {
    let parts: Vec<CompanyInventory> = parts.iter().map(shown_part).collect();
    let searched = searched.map(view::shown);
    let body = inventory_view::csv_for(&parts, searched.as_deref());
    csv_headers((StatusCode::OK, body).into_response(), name)
}

fn parse_company(raw: &str) -> Result<CompanyId, CoreError> {
    CompanyId::parse(raw.trim())
}

/// What a user can open, optionally limited to one company (`company_not_found`,
/// `not_entitled` or `company_not_connected` for that company).
async fn user_parts(
    st: &WebState,
    actor: &Actor,
    user: &IdentityInput,
    company: Option<&str>,
) -> Result<Vec<CompanyInventory>, CoreError> {
    let only = match company.map(str::trim).filter(|c| !c.is_empty()) {
        Some(raw) => Some(exogate_core::ops::companies::resolve(st.app.ctx(), actor, raw).await?),
        None => None,
    };
    match only {
        // The same answers as every other per-company route: not found, not entitled, not
        // connected.
        Some(id) => Ok(vec![inv::by_user_in(st.app.ctx(), actor, &id, user).await?]),
        None => inv::by_user(st.app.ctx(), actor, user).await,
    }
}

/// `GET /api/v1/inventory/users/{user}?company=&format=json|csv`
async fn api_user(
    State(st): State<WebState>,
    ApiAuth(auth): ApiAuth,
    Path(user): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = format_of(&q)?;
    let ident = IdentityInput::parse(&user)?;
    let actor = auth.api_actor();
    if let Some(c) = q.company.as_deref().filter(|c| !c.trim().is_empty()) {
        company_named(&st, &actor, c).await?;
    }
    let parts = user_parts(&st, &actor, &ident, q.company.as_deref()).await?;
    Ok(match format {
        Format::Csv => csv_response(
            &format!("user-{}", ident.as_str()),
            &parts,
            Some(ident.as_str()),
        ),
        Format::Json => Json(json!({
            "user": ident.as_str(),
            "companies": futures::future::join_all(parts.iter().map(|p| part_json_with_ends(&st, p))).await,
        }))
        .into_response(),
    })
}

/// `GET /api/v1/inventory/companies/{id}?format=json|csv`: every row of one company.
async fn api_company(
    State(st): State<WebState>,
    ApiAuth(auth): ApiAuth,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = format_of(&q)?;
    let id = company_named(&st, &auth.api_actor(), &id).await?;
    // (scale2) The CSV is written as its rows are read (`inventory_export`).
    if format == Format::Csv {
        let (part, rows) =
            inv::export::company_rows_stream(st.app.ctx(), &auth.api_actor(), &id).await?;
        return Ok(super::inventory_export::csv_stream(
            id.as_str(),
            shown_part(&part),
            rows,
        ));
    }
    let part = inv::company_rows(st.app.ctx(), &auth.api_actor(), &id).await?;
    Ok(Json(json!({ "companies": [part_json_with_ends(&st, &part).await] })).into_response())
}

/// `GET /api/v1/inventory/companies/{id}/mailboxes/{mailbox}?format=json|csv`
async fn api_mailbox(
    State(st): State<WebState>,
    ApiAuth(auth): ApiAuth,
    Path((id, mailbox)): Path<(String, String)>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let format = format_of(&q)?;
    let id = company_named(&st, &auth.api_actor(), &id).await?;
    let mbx = IdentityInput::parse(&mailbox)?;
    let part = inv::by_mailbox(st.app.ctx(), &auth.api_actor(), &id, &mbx).await?;
    Ok(match format {
        Format::Csv => csv_response(
            &format!("{}-{}", id.as_str(), mbx.as_str()),
            std::slice::from_ref(&part),
            Some(mbx.as_str()),
        ),
        Format::Json => Json(json!({
            "mailbox": mbx.as_str(),
            "companies": [part_json_with_ends(&st, &part).await],
        }))
        .into_response(),
    })
}

#[derive(Deserialize, Default)]
pub struct StatusQuery {
    /// Long-poll: wait until the board's version is above this.
    #[serde(default)]
    after: Option<u64>,
}

/// The inventory status of every company the actor is entitled to, with live sync progress.
async fn status_json(st: &WebState, actor: &Actor, version: u64) -> Result<Value, CoreError> {
    // The board first, then the database: a sweep writes its result to the database before it
    // tells the board, so a sweep the board shows finished is finished in what we read next.
    let board = st.sync.snapshot();
    let parts = inv::statuses(st.app.ctx(), actor).await?;
    let companies: Vec<StatusEntry> = parts
        .iter()
        .map(|c| StatusEntry {
            part: CompanyInventoryView::status_of(c, NEVER_SWEPT),
            sync: board.get(&c.company).map(|p| p.json()),
        })
        .collect();
    // Only sweeps this server runs: a sweep that another server runs (under its lease) or that
    // crashed (its lease passed; syncing again continues it) must not keep followers waiting.
    let running = parts
        .iter()
        .any(|c| board.get(&c.company).is_some_and(|p| p.running));
    Ok(json!({ "version": version, "running": running, "companies": companies }))
}

/// `GET /api/v1/inventory/status?after=N`
async fn api_status(
    State(st): State<WebState>,
    ApiAuth(auth): ApiAuth,
    Query(q): Query<StatusQuery>,
) -> ApiResult<Json<Value>> {
    let version = match q.after {
        Some(after) => st.sync.wait_after(after, LONG_POLL).await,
        None => st.sync.version(),
    };
    Ok(Json(status_json(&st, &auth.api_actor(), version).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    #[serde(default)]
    company: Option<String>,
}

/// `POST /api/v1/inventory/sync` with `{"company": "contoso"}` or `{}` (all) → `202`.
async fn api_sync(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Body(b): Body<SyncBody>,
) -> ApiResult<Response> {
    let t = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    auth.0.check_csrf(t)?;
    let actor = auth.0.api_actor();
    if let Some(c) = b.company.as_deref().filter(|c| !c.trim().is_empty()) {
        company_named(&st, &actor, c).await?;
    }
    let (started, running) = sync(&st, &actor, b.company.as_deref()).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "started": started.iter().map(CompanyId::as_str).collect::<Vec<_>>(),
            "already_running": running.iter().map(CompanyId::as_str).collect::<Vec<_>>(),
            "version": st.sync.version(),
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffboardBody {
    company: String,
    user: String,
}

/// `POST /api/v1/inventory/offboard` with `{"company","user"}` → `201 Request`.
async fn api_offboard(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Body(b): Body<OffboardBody>,
) -> ApiResult<Response> {
    let actor = auth.change(&headers)?;
    let asked = new_request_id();
    let input = OffboardInput {
        id: asked,
        company: company_named(&st, &actor, &b.company).await?,
        user: IdentityInput::parse(&b.user)?,
    };
    let req = inv::request_offboard(st.app.ctx(), &actor, input).await?;
    super::request_changed(&st.app, &req);
    let v = super::api::request_json(&st, &actor, &req).await?;
    Ok((super::api::created_or_existing(asked, &req), Json(v)).into_response())
}

pub fn api_routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/inventory/status", get(api_status))
        .route("/api/v1/inventory/sync", post(api_sync))
        .route("/api/v1/inventory/users/{user}", get(api_user))
        .route("/api/v1/inventory/companies/{id}", get(api_company))
        .route(
            "/api/v1/inventory/companies/{id}/mailboxes/{mailbox}",
            get(api_mailbox),
        )
        .route("/api/v1/inventory/offboard", post(api_offboard))
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

/// One row on a page, from a part already sanitized ([`shown_part`]); the template HTML-escapes
/// it.
pub struct RowView {
    pub mailbox_name: String,
    pub mailbox_address: String,
    pub mailbox_kind: &'static str,
    pub right: &'static str,
    pub via: &'static str,
    pub class: &'static str,
    pub trustee_name: String,
    pub trustee_address: String,
    pub sid: String,
    /// Offboarding removes it (a right the user holds directly).
    pub removable: bool,
    // (timed-grants)
    /// "ends in 3 d" for a timed grant whose removal is scheduled.
    pub ends: Option<String>,
}

fn row_view(r: &InventoryRow) -> RowView {
    let t = &r.trustee;
    let id = t.identity.as_ref();
    RowView {
        mailbox_name: r.mailbox.display_name.clone(),
        mailbox_address: r.mailbox.primary_address.clone(),
        mailbox_kind: r.mailbox.kind.as_str(),
        right: r.right.label(),
        via: inv::held_via(t.class),
        class: t.class.as_str(),
        trustee_name: id
            .map_or(t.raw.as_str(), |i| i.display_name.as_str())
            .to_owned(),
        trustee_address: id.map_or("", |i| i.primary_address.as_str()).to_owned(),
        sid: t.sid.as_deref().unwrap_or("").to_owned(),
        removable: inv::offboard_removes(r),
        ends: None,
    }
}

// (timed-grants)
/// The part with each timed grant's end, joined from the company's scheduled removals.
async fn with_ends(st: &WebState, mut v: PartView, c: &CompanyInventory) -> PartView {
    let Ok(removals) = exogate_core::ops::timed::scheduled_removals(st.app.ctx(), &c.company).await
    else {
        return v;
    };
    if removals.is_empty() {
        return v;
    }
    let now = st.app.clock.now();
    for (row, r) in v.rows.iter_mut().zip(&c.rows) {
        if let Some(id) = r.trustee.identity.as_ref()
            && let Some(end) = exogate_core::ops::timed::end_of(
                &removals,
                &r.mailbox.object_id,
                &id.object_id,
                r.right,
            )
        {
            row.ends = Some(exogate_core::timed::ends_in(end, now));
        }
    }
    v
}

/// One company on a page.
pub struct PartView {
    pub id: String,
    pub name: String,
    pub as_of: String,
    /// `as_of` for people: relative, the local time on hover (`<time>`), or "never".
    pub as_of_html: String,
    pub freshness: &'static str,
    pub warning: Option<String>,
    pub mailboxes: u64,
    pub rows_total: u64,
    pub rows: Vec<RowView>,
    /// Live progress text of a sweep this server runs.
    pub progress: String,
    pub syncing: bool,
    pub may_sync: bool,
}

fn part_view(st: &WebState, actor: &Actor, c: &CompanyInventory) -> PartView {
    let c = &shown_part(c);
    let live = st.sync.get(&c.company);
    let progress = live.as_ref().map_or_else(String::new, progress_text);
    PartView {
        id: c.company.as_str().to_owned(),
        name: c.company_name.clone(),
        as_of: c
            .status
            .as_ref()
            .and_then(|s| s.as_of)
            .map_or_else(|| "never".to_owned(), |t| t.to_string()),
        as_of_html: c.status.as_ref().and_then(|s| s.as_of).map_or_else(
            || "never".to_owned(),
            |t| crate::local_time::html(st.app.clock.now(), t),
        ),
        freshness: c.freshness.as_str(),
        warning: warning(c),
        mailboxes: c.status.as_ref().map_or(0, |s| s.mailboxes),
        rows_total: c.status.as_ref().map_or(0, |s| s.rows),
        rows: c.rows.iter().map(row_view).collect(),
        progress,
        // A sweep the database calls running but this server does not run runs on another
        // server (Sync now says so) or crashed (its lease passed: Sync now continues it).
        syncing: live.is_some_and(|p| p.running),
        may_sync: exogate_core::policy::can_request(&actor.user, &c.company).is_ok(),
    }
}

/// "full access 300/2000", "done: 2000 mailboxes, 512 rows", "failed: …" (the same text the
/// page's script writes).
fn progress_text(p: &SyncProgress) -> String {
    if p.running {
        if p.total > 0 {
            format!("{} {}/{}", p.phase, p.done, p.total)
        } else {
            p.phase.to_owned()
        }
    } else if let Some(e) = &p.error {
        format!("failed: {e}")
    } else {
        format!("done: {} mailboxes, {} rows", p.mailboxes, p.rows)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "inventory.html")]
pub struct InventoryPage {
    nav: Option<Nav>,
    csrf: String,
    user: String,
    company: String,
    /// Every entitled company's status (the sync table).
    statuses: Vec<PartView>,
    /// The search result, when a user was asked for.
    results: Option<Vec<PartView>>,
    found: usize,
    may_sync_all: bool,
    export_json: String,
    export_csv: String,
}

#[derive(Deserialize, Default)]
pub struct InventoryQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    company: String,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /inventory?user=&company=`
pub async fn page(
    State(st): State<WebState>,
    auth: PageAuth,
    Query(q): Query<InventoryQuery>,
) -> PageResult<InventoryPage> {
    let actor = &auth.0.actor;
    let statuses = inv::statuses(st.app.ctx(), actor).await?;
    let user = q.user.trim().to_owned();
    let company = q.company.trim().to_owned();
    let (results, export_json, export_csv) = if user.is_empty() {
        (None, String::new(), String::new())
    } else {
        let ident = IdentityInput::parse(&user)?;
        let parts = user_parts(&st, actor, &ident, Some(&company)).await?;
        let base = format!("/api/v1/inventory/users/{}", enc(ident.as_str()));
        let c = if company.is_empty() {
            String::new()
        } else {
            format!("&company={}", enc(&company))
        };
        (
            Some(
                futures::future::join_all(
                    parts
                        .iter()
                        .map(|p| with_ends(&st, part_view(&st, actor, p), p)),
                )
                .await,
            ),
            format!("{base}?format=json{c}"),
            format!("{base}?format=csv{c}"),
        )
    };
    let found = results
        .as_ref()
        .map_or(0, |r| r.iter().map(|p| p.rows.len()).sum());
    let statuses: Vec<PartView> = statuses.iter().map(|p| part_view(&st, actor, p)).collect();
    Ok(InventoryPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        may_sync_all: statuses.iter().any(|p| p.may_sync),
        statuses,
        results,
        found,
        user: view::shown(&user),
        company,
        export_json,
        export_csv,
    })
}

#[derive(Deserialize)]
pub struct SyncForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    company: Option<String>,
}

/// `POST /inventory/sync` (the no-script fallback of "Sync now"): starts and goes back.
pub async fn page_sync(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<SyncForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf)).map_err(PageError)?;
    sync(&st, &auth.0.actor, f.company.as_deref()).await?;
    Ok(Redirect::to("/inventory"))
}

#[derive(Template, WebTemplate)]
#[template(path = "inventory_mailbox.html")]
pub struct MailboxInventoryPage {
    nav: Option<Nav>,
    part: PartView,
    mailbox: String,
    live_url: String,
    export_json: String,
    export_csv: String,
}

#[derive(Deserialize)]
pub struct MailboxQuery {
    identity: String,
}

/// `GET /companies/{id}/inventory?identity=`: who can open a mailbox, from the inventory.
pub async fn mailbox_page(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(q): Query<MailboxQuery>,
) -> PageResult<MailboxInventoryPage> {
    let id = parse_company(&id)?;
    let ident = IdentityInput::parse(&q.identity)?;
    let actor = &auth.0.actor;
    let part = inv::by_mailbox(st.app.ctx(), actor, &id, &ident).await?;
    let base = format!(
        "/api/v1/inventory/companies/{}/mailboxes/{}",
        id.as_str(),
        enc(ident.as_str())
    );
    Ok(MailboxInventoryPage {
        nav: auth.nav(),
        part: with_ends(&st, part_view(&st, actor, &part), &part).await,
        mailbox: view::shown(ident.as_str()),
        live_url: format!(
            "/companies/{}/mailbox?identity={}",
            id.as_str(),
            enc(ident.as_str())
        ),
        export_json: format!("{base}?format=json"),
        export_csv: format!("{base}?format=csv"),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "inventory_offboard.html")]
pub struct OffboardPage {
    nav: Option<Nav>,
    csrf: String,
    companies: Vec<(String, String)>,
    company: String,
    user: String,
    preview: Option<PartView>,
    removable: usize,
}

#[derive(Deserialize, Default)]
pub struct OffboardQuery {
    #[serde(default)]
    company: String,
    #[serde(default)]
    user: String,
}

/// `GET /inventory/offboard?company=&user=`: pick a company and a user, see everything they can
/// open there, then ask for its removal.
pub async fn offboard_page(
    State(st): State<WebState>,
    auth: PageAuth,
    Query(q): Query<OffboardQuery>,
) -> PageResult<OffboardPage> {
    let actor = &auth.0.actor;
    let statuses = inv::statuses(st.app.ctx(), actor).await?;
    let companies = statuses
        .iter()
        .filter(|c| exogate_core::policy::can_request(&actor.user, &c.company).is_ok())
        .map(|c| (c.company.as_str().to_owned(), view::shown(&c.company_name)))
        .collect();
    let company = q.company.trim().to_owned();
    let user = q.user.trim().to_owned();
    let preview = if company.is_empty() || user.is_empty() {
        None
    } else {
        let ident = IdentityInput::parse(&user)?;
        let parts = user_parts(&st, actor, &ident, Some(&company)).await?;
        parts.first().map(|p| part_view(&st, actor, p))
    };
    let removable = preview
        .as_ref()
        .map_or(0, |p| p.rows.iter().filter(|r| r.removable).count());
    Ok(OffboardPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        companies,
        company,
        user: view::shown(&user),
        preview,
        removable,
    })
}

#[derive(Deserialize)]
pub struct OffboardForm {
    #[serde(default)]
    csrf: String,
    company: String,
    user: String,
}

/// `POST /inventory/offboard`: ONE approval request for every removal, then its page.
pub async fn offboard_submit(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<OffboardForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf)).map_err(PageError)?;
    let input = OffboardInput {
        id: new_request_id(),
        company: parse_company(&f.company)?,
        user: IdentityInput::parse(&f.user)?,
    };
    let req = inv::request_offboard(st.app.ctx(), &auth.0.actor, input).await?;
    super::request_changed(&st.app, &req);
    Ok(Redirect::to(&format!("/requests/{}", req.id)))
}
