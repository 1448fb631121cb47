//! Direct grants and removals through the control API (`/_emulator/exchange/{tenant}/grants`):
//! changes made "outside" (set-up, no apply-log entry), as the ground truth shows them.

use serde_json::{Value, json};

use crate::support::{CONTOSO, Env};

/// (mailbox name, trustee, right) of every ground-truth row, deny and inherited rows left out.
async fn truth(env: &Env) -> Vec<(String, String, String)> {
    let (s, b) = env
        .control("GET", &format!("/exchange/{CONTOSO}/permissions"), None)
        .await;
    assert_eq!(s, 200, "{b}");
    let mut rows: Vec<_> = b["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["deny"] != json!(true) && p["inherited"] != json!(true))
        .map(|p| {
            (
                p["mailbox"].as_str().unwrap_or_default().to_lowercase(),
                p["trustee"].as_str().unwrap_or_default().to_lowercase(),
                p["right"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn has(rows: &[(String, String, String)], mailbox: &str, trustee: &str, right: &str) -> bool {
    rows.iter()
        .any(|(m, t, r)| m.contains(mailbox) && t.contains(trustee) && r.contains(right))
}

async fn revoke(env: &Env, body: Value) -> (u16, Value) {
    env.control("DELETE", &format!("/exchange/{CONTOSO}/grants"), Some(body))
        .await
}

#[tokio::test]
async fn a_direct_removal_takes_the_right_away_without_an_apply_log_entry() {
    let env = Env::demo().await;
    let before = truth(&env).await;
    for (mailbox, trustee, right) in [
        ("sales", "alice", "SendAs"),
        ("sales", "alice", "FullAccess"),
        ("sales", "carol", "SendOnBehalf"),
    ] {
        // Carol is reported by her object id (her Exchange name): match any trustee for her
        // Send on Behalf on sales (she is its only delegate).
        let shown = if trustee == "carol" { "" } else { trustee };
        assert!(has(&before, mailbox, shown, right), "{before:?}");
        let body = json!({"mailbox": mailbox, "trustee": trustee, "right": right});
        let (s, b) = revoke(&env, body.clone()).await;
        assert_eq!(s, 204, "{b}");
        let after = truth(&env).await;
        assert!(!has(&after, mailbox, shown, right), "{after:?}");
        // Removing what is not there is no error.
        let (s, b) = revoke(&env, body).await;
        assert_eq!(s, 204, "{b}");
    }
    // Everything else stayed.
    let after = truth(&env).await;
    assert_eq!(after.len(), before.len() - 3, "{before:?} → {after:?}");
    assert!(has(&after, "support", "bob", "SendAs"), "{after:?}");
    // Set-up, not an Exchange write: nothing in the apply log.
    let (s, log) = env.control("GET", "/apply-log", None).await;
    assert_eq!(s, 200);
    let entries = log
        .as_array()
        .cloned()
        .or_else(|| log["entries"].as_array().cloned())
        .unwrap_or_default();
    assert!(entries.is_empty(), "{log}");
    // An unknown mailbox or right is a 400.
    let (s, _) = revoke(
        &env,
        json!({"mailbox": "nobody", "trustee": "alice", "right": "SendAs"}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = revoke(
        &env,
        json!({"mailbox": "sales", "trustee": "alice", "right": "Bogus"}),
    )
    .await;
    assert_eq!(s, 400);
}
