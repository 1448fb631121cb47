//! (scale2) A company's CSV export streamed through the real router: the same bytes as the
//! whole-file CSV (`inventory_view::csv` of the shown part), spreadsheet formulas still
//! defused, a never-swept company still one line; the entitlement checks answer before any
//! byte of CSV; a row that fails mid-way cuts the transfer (the client sees an error, never a
//! file that looks complete).

use exogate::inventory_view;
use exogate::views::{shown, shown_identity, shown_message};
use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::inventory::{InventoryRow, InventoryTrustee, SweepBegin, SweepLease};
use exogate_core::model::{
    CompanyId, Entitlement, RecipientKind, ResolvedIdentity, Role, UserId, UserName,
};
use exogate_core::ops;
use reqwest::StatusCode;
use serde_json::Value;

use crate::mcp_http::token_for;
use crate::support::TestApp;

fn ident(id: String, address: String, name: String, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: id,
        primary_address: address,
        display_name: name,
        kind,
    }
}

/// `n` rows of contoso; every 7th trustee's display name a formula, every 11th with commas,
/// quotes, a line break and a control character.
fn rows(n: usize) -> Vec<InventoryRow> {
    (0..n)
        .map(|i| {
            let name = match i {
                i if i % 7 == 0 => format!("=HYPERLINK(\"http://evil.example/{i}\")"),
                i if i % 11 == 0 => format!("Smith, \"Al\"\n{i}\u{7}"),
                i => format!("Person {i}"),
            };
            InventoryRow {
                company: CompanyId::parse("contoso").unwrap(),
                mailbox: ident(
                    format!("00000000-0000-4000-8000-{i:012x}"),
                    format!("box{i:05}@contoso.onmicrosoft.com"),
                    format!("+Box {i}"),
                    RecipientKind::SharedMailbox,
                ),
                trustee: InventoryTrustee::resolved(ident(
                    format!("11111111-0000-4000-8000-{i:012x}"),
                    format!("p{i}@contoso.onmicrosoft.com"),
                    name,
                    RecipientKind::UserMailbox,
                )),
                right: if i % 2 == 0 {
                    Permission::FullAccess
                } else {
                    Permission::SendAs
                },
            }
        })
        .collect()
}

/// One finished sweep of contoso with `rows`, written through the store.
async fn swept(t: &TestApp, rows: &[InventoryRow]) {
    let s = &t.app.store;
    let c = CompanyId::parse("contoso").unwrap();
    let now = t.app.clock.now();
    let tenant = t
        .app
        .store
        .get_company(&c)
        .await
        .unwrap()
        .unwrap()
        .connection
        .unwrap()
        .tenant_id;
    let lease = SweepLease {
        owner: "test".into(),
        until: now.plus_secs(60),
    };
    let started = NewAuditEvent::system(now, AuditKind::InventorySweepStarted).company(&c);
    let g = match s
        .inventory_begin_sweep(&c, tenant, now, &lease, started)
        .await
        .unwrap()
    {
        SweepBegin::Started(st) => st.generation,
        busy => panic!("{busy:?}"),
    };
    for chunk in rows.chunks(500) {
        assert!(
            s.inventory_write_chunk(&c, g, "test", chunk, &[])
                .await
                .unwrap()
        );
    }
    let done = NewAuditEvent::system(now, AuditKind::InventorySweepFinished).company(&c);
    assert!(
        s.inventory_finish_sweep(&c, g, "test", now, rows.len() as u64, done)
            .await
            .unwrap()
    );
}

/// The whole-file CSV of a company, as the export wrote it before it streamed.
async fn whole(t: &TestApp, company: &str) -> String {
    let admin = t.actor("admin").await;
    let mut part =
        ops::inventory::company_rows(t.app.ctx(), &admin, &CompanyId::parse(company).unwrap())
            .await
            .unwrap();
    part.company_name = shown(&part.company_name);
    if let Some(s) = part.status.as_mut() {
        s.sweep_error = s.sweep_error.as_deref().map(shown_message);
    }
    for r in &mut part.rows {
        r.mailbox = shown_identity(&r.mailbox);
        r.trustee.raw = shown(&r.trustee.raw);
        r.trustee.sid = r.trustee.sid.as_deref().map(shown);
        r.trustee.identity = r.trustee.identity.as_ref().map(shown_identity);
    }
    inventory_view::csv(std::slice::from_ref(&part))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_company_csv_streams_the_bytes_of_the_whole_file() {
    let t = TestApp::start().await;
    swept(&t, &rows(1_500)).await;
    let token = token_for(&t, "tech").await;
    let get = |path: &str| t.http.get(t.url(path)).bearer_auth(&token).send();

    let r = get("/api/v1/inventory/companies/contoso?format=csv")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"inventory-contoso.csv\""
    );
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed, not sized up front"
    );
    let csv = r.text().await.unwrap();
    assert_eq!(csv, whole(&t, "contoso").await);
    assert!(csv.lines().filter(|l| l.starts_with("contoso,")).count() >= 1_500);
    // Formulas defused, in mailbox and trustee names alike; no line starts a formula.
    assert!(csv.contains(",'+Box 7,"), "{}", &csv[..400]);
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil.example/7\"\")\""));
    assert!(!csv.contains(",=HYPERLINK") && !csv.contains(",+Box"));

    // A company never swept: its one line, as before.
    let r = get("/api/v1/inventory/companies/fabrikam?format=csv")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    assert_eq!(csv, whole(&t, "fabrikam").await);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().starts_with("fabrikam,,never,"),
        "{csv}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_company_csv_is_refused_before_any_row_to_callers_who_may_not_see_it() {
    let t = TestApp::start().await;
    swept(&t, &rows(20)).await;
    ops::users::add_user(
        t.app.ctx(),
        ops::users::Admin::LocalOperator,
        ops::users::NewUser {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            name: UserName::parse("fabtech").unwrap(),
            role: Role::Technician,
            entitlement: Entitlement::parse("fabrikam").unwrap(),
            password_hash: None,
        },
    )
    .await
    .unwrap();
    let token = token_for(&t, "fabtech").await;
    let get = |path: String| t.http.get(t.url(&path)).bearer_auth(&token).send();
    for (path, status, code) in [
        ("contoso", StatusCode::FORBIDDEN, "not_entitled"),
        ("CONTOSO", StatusCode::NOT_FOUND, "company_not_found"),
        ("nosuch", StatusCode::FORBIDDEN, "not_entitled"),
        ("%3Dcmd%7C", StatusCode::NOT_FOUND, "company_not_found"),
    ] {
        let r = get(format!("/api/v1/inventory/companies/{path}?format=csv"))
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json", "{path}");
        let body = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"]["code"], code, "{path}: {v}");
        assert!(!body.contains("box0000"), "{body}");
    }
    // No token, a foreign token: 401, no rows.
    for auth in [None, Some("exo_not-a-token")] {
        let mut q = t
            .http
            .get(t.url("/api/v1/inventory/companies/contoso?format=csv"));
        if let Some(a) = auth {
            q = q.bearer_auth(a);
        }
        let r = q.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(!r.text().await.unwrap().contains("box0000"));
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_company_csv_that_fails_mid_way_is_a_failed_transfer() {
    let t = TestApp::start().await;
    swept(&t, &rows(3_000)).await;
    // The row 2,900th in the export's order no longer decodes.
    let exogate_store::Db::Sqlite(p) = &t.app.db else {
        panic!("the test app runs on SQLite")
    };
    let done = sqlx::query("UPDATE inventory_rows SET mailbox_kind = 'NotAKind' WHERE mailbox_address = 'box02900@contoso.onmicrosoft.com'")
        .execute(p)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    let token = token_for(&t, "tech").await;
    let mut r = t
        .http
        .get(t.url("/api/v1/inventory/companies/contoso?format=csv"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // The response had started: 200 and the first rows arrive, then the transfer breaks.
    assert_eq!(r.status(), StatusCode::OK);
    let mut got = Vec::new();
    let err = loop {
        match r.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => panic!("the body ended as if complete after {} bytes", got.len()),
            Err(e) => break e,
        }
    };
    assert!(err.is_body() || err.is_decode(), "{err:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || text.starts_with("company,as_of,freshness,"));
    assert!(!text.contains("box02900@"), "nothing of the broken row");
    assert!(!text.contains("box02999@"), "nothing after it");
    // The same export whole (JSON) answers an error, not a partial list.
    let r = t
        .http
        .get(t.url("/api/v1/inventory/companies/contoso?format=json"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    t.stop().await;
}
