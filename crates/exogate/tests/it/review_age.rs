//! (review-age) Access reviews scoped to "grants older than N days", through the real router
//! and the emulator: two sweeps at driven clock times, a grant added between them is left out
//! of a campaign older than its age and in one without the limit (with its first-seen time);
//! the API and the page form refuse 0 and 99999 days; the campaign page, the attestation and
//! the `review.created` audit detail show the scope; the CLI's `--older-than-days` works.

use exogate_core::ports::Clock as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::reviews::sync;
use super::web::WebApp;

const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
const DAY: i64 = 86_400;

fn has(items: &[Value], mailbox: &str, right: &str, trustee: &str) -> Option<Value> {
    items
        .iter()
        .find(|i| {
            i["mailbox"]["address"]
                .as_str()
                .unwrap()
                .starts_with(mailbox)
                && i["right"] == right
                && i["trustee"]["address"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(trustee)
        })
        .cloned()
}

#[tokio::test]
async fn a_campaign_older_than_n_days_leaves_out_a_newer_grant_and_refuses_bad_days() {
    let w = WebApp::start().await;
    let t0 = w.clock.now();
    sync(&w, &["contoso"]).await;
    // A grant made outside exogate after the first sweep; the second sweep, 10 days later, sees it.
    let r = w
        .http
        .post(format!(
            "{}/_emulator/exchange/{CONTOSO}/grants",
            w.emulator.base_url
        ))
        .json(&json!({"mailbox": "sales", "trustee": "bob", "right": "FullAccess"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    w.clock.advance_secs(10 * DAY);
    let t10 = w.clock.now();
    sync(&w, &["contoso"]).await;
    w.clock.advance_secs(DAY);

    let m = w.login("manager").await;
    let seq0 = w.audit_head().await.map_or(0, |h| h.0);
    let items_of = |c: &Value| c["id"].as_str().unwrap().to_owned();
    let (s, all) = m
        .api_post(
            "/api/v1/reviews",
            json!({"name": "All", "companies": ["contoso"], "due_in": "14d"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{all}");
    assert_eq!(all["older_than_days"], Value::Null, "{all}");
    let (s, old) = m
        .api_post(
            "/api/v1/reviews",
            json!({"name": "Old", "companies": ["contoso"], "due_in": "14d", "older_than_days": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{old}");
    assert_eq!(old["older_than_days"], 5, "{old}");
    let n_all = all["companies"][0]["items"].as_u64().unwrap();
    let n_old = old["companies"][0]["items"].as_u64().unwrap();
    assert_eq!(
        n_old + 1,
        n_all,
        "only the new grant is left out: {all} {old}"
    );

    let items = |id: String| {
        let m = m.clone();
        async move {
            let (s, page) = m
                .api_get(&format!("/api/v1/reviews/{id}/items?company=contoso"))
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            page["items"].as_array().unwrap().clone()
        }
    };
    let in_all = items(items_of(&all)).await;
    let new = has(&in_all, "sales@", "full_access", "bob@").expect("the new grant is in");
    assert_eq!(new["first_seen"], json!(t10.to_string()), "{new}");
    let kept = in_all
        .iter()
        .find(|i| i["first_seen"] == json!(t0.to_string()))
        .unwrap_or_else(|| panic!("an old grant keeps the first sweep's time: {in_all:?}"));
    assert!(kept["first_seen"].is_string());
    let in_old = items(items_of(&old)).await;
    assert!(
        has(&in_old, "sales@", "full_access", "bob@").is_none(),
        "{in_old:?}"
    );
    assert!(
        in_old
            .iter()
            .all(|i| i["first_seen"] == json!(t0.to_string())),
        "{in_old:?}"
    );
    // Older than 1 day (cutoff: the second sweep's time): the new one is in too.
    let (s, one) = m
        .api_post(
            "/api/v1/reviews",
            json!({"name": "One", "companies": ["contoso"], "due_in": "14d", "older_than_days": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{one}");
    assert_eq!(one["companies"][0]["items"].as_u64(), Some(n_all), "{one}");

    // The audit detail carries the scope.
    let created: Vec<Value> = w
        .app
        .store
        .list_audit(seq0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == "review.created")
        .map(|e| serde_json::from_str(&e.event.detail).unwrap())
        .collect();
    assert_eq!(created.len(), 3);
    assert_eq!(created[0]["older_than_days"], Value::Null);
    assert_eq!(created[1]["older_than_days"], 5);

    // Refused: out of range (422 invalid_input), nothing started.
    for bad in [json!(0), json!(3651), json!(99_999)] {
        let (s, e) = m
            .api_post(
                "/api/v1/reviews",
                json!({"name": "Bad", "companies": ["contoso"], "older_than_days": bad}),
            )
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
            "{bad}: {e}"
        );
    }
    for bad in ["0", "99999", "-3", "ten", "5<script>"] {
        let r = m
            .form(
                "/reviews",
                &[
                    ("csrf", m.csrf.as_str()),
                    ("name", "Bad form"),
                    ("companies", "contoso"),
                    ("due_in", "7d"),
                    ("schedule", "none"),
                    ("older_than_days", bad),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(!r.text().await.unwrap().contains("5<script>"), "{bad}");
    }
    let (_, list) = m.api_get("/api/v1/reviews").await;
    assert_eq!(list["reviews"].as_array().unwrap().len(), 3, "{list}");

    // The page form takes it too; the campaign page and the attestation show the scope and
    // each item's first-seen time.
    let r = m
        .form(
            "/reviews",
            &[
                ("csrf", m.csrf.as_str()),
                ("name", "Form"),
                ("companies", "contoso"),
                ("due_in", "7d"),
                ("schedule", "none"),
                ("older_than_days", "5"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let at = r.headers()["location"].to_str().unwrap().to_owned();
    let (s, html) = m.get(&format!("{at}?company=contoso")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("only grants older than 5 days"), "{html}");
    assert!(html.contains("since <time datetime=\""), "{html}");
    let (_, html) = m.get("/reviews").await;
    assert!(html.contains("name=\"older_than_days\""));
    let (s, html) = m.get(&format!("{at}/report/contoso")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("grants older than 5 days at the start"),
        "{html}"
    );
    assert!(html.contains("since <time"), "{html}");
    let (_, html) = m
        .get(&format!("/reviews/{}/report/contoso", items_of(&all)))
        .await;
    assert!(html.contains("all grants"), "{html}");

    // A grant exogate itself made (approved, executed, verified, the inventory patched) is
    // first seen when the worker patched it: new, so not in a campaign older than a day.
    let (s, req) = m
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_on_behalf", "mailbox": "sales", "trustee": "bob"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    let rid = req["id"].as_str().unwrap().to_owned();
    let admin = w.login("admin").await;
    let (s, a) = admin
        .api_post(&format!("/api/v1/requests/{rid}/approve"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let done = w
        .wait_terminal(exogate_core::model::RequestId::parse(&rid).unwrap())
        .await;
    assert_eq!(done.state.as_str(), "succeeded", "{done:?}");
    let patched_at = w.clock.now();
    w.clock.advance_secs(60);
    let (_, now_all) = m
        .api_post(
            "/api/v1/reviews",
            json!({"name": "After", "companies": ["contoso"], "due_in": "14d"}),
        )
        .await;
    let (_, now_old) = m
        .api_post(
            "/api/v1/reviews",
            json!({"name": "After, old", "companies": ["contoso"], "due_in": "14d", "older_than_days": 1}),
        )
        .await;
    let granted = has(
        &items(items_of(&now_all)).await,
        "sales@",
        "send_on_behalf",
        "bob@",
    )
    .expect("the executed grant is in the inventory");
    assert_eq!(
        granted["first_seen"],
        json!(patched_at.to_string()),
        "{granted}"
    );
    assert!(
        has(
            &items(items_of(&now_old)).await,
            "sales@",
            "send_on_behalf",
            "bob@"
        )
        .is_none(),
        "{now_old}"
    );
    w.stop().await;
}

#[tokio::test]
async fn the_cli_takes_older_than_days() {
    let t = super::support::TestApp::start().await;
    let sync = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "admin"])
        .await;
    assert!(sync.success, "{sync:?}");
    let create = |days: Option<&'static str>| {
        let t = &t;
        async move {
            let mut args = vec![
                "--json",
                "review",
                "create",
                "--name",
                "CLI age",
                "--companies",
                "contoso",
                "--as",
                "manager",
            ];
            if let Some(d) = days {
                args.extend(["--older-than-days", d]);
            }
            t.cli(&args).await
        }
    };
    let all = create(None).await;
    assert!(all.success, "{all:?}");
    assert!(all.json()["companies"][0]["items"].as_u64().unwrap() > 0);
    // Everything was first seen by the sweep just now: nothing is 30 days old.
    let old = create(Some("30")).await;
    assert!(old.success, "{old:?}");
    assert_eq!(old.json()["older_than_days"], 30);
    assert_eq!(old.json()["companies"][0]["items"], 0, "{old:?}");
    let id = all.json()["id"].as_str().unwrap().to_owned();
    let show = t.cli(&["review", "show", &id, "--as", "tech"]).await;
    assert!(show.success, "{show:?}");
    let head = show
        .stdout
        .lines()
        .find(|l| l.starts_with('#'))
        .unwrap_or_default();
    assert!(head.trim_end().ends_with("SINCE"), "{}", show.stdout);
    let rows: Vec<&str> = show
        .stdout
        .lines()
        .filter(|l| l.contains("contoso.onmicrosoft.com  "))
        .collect();
    assert!(!rows.is_empty(), "{}", show.stdout);
    assert!(
        rows.iter()
            .all(|l| (l.contains("just now (") || l.contains(" ago ("))
                && l.trim_end().ends_with(')')),
        "each item shows its first-seen time: {}",
        show.stdout
    );
    let bad = create(Some("0")).await;
    assert!(!bad.success);
    assert_eq!(bad.json()["error"]["code"], "invalid_input", "{bad:?}");
    t.stop().await;
}
