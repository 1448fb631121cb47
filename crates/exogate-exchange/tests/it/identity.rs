//! Hostile identity strings are refused before anything is sent.

use exogate_exchange::{Change, Identity};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn hostile_identities_are_refused_before_any_request() {
    let w = World::demo().await;
    let client = w.client();
    // Warm up so the counters exist, then count.
    client.mailbox(CONTOSO, &id("alice")).await.unwrap();
    let before = w.exchange_requests().await;
    let hostile = [
        "*",
        "alice*",
        "al?ce",
        "alice\"; Remove-Mailbox",
        "alice\n",
        "alice\u{0}",
        "alice,bob",
        "alice;bob",
        "[alice]",
        "",
        " alice",
        "DOMAIN\\alice",
        &"a".repeat(300),
    ];
    for h in hostile {
        assert!(Identity::parse(h).is_err(), "{h:?} accepted");
        // The core deserializes tool input into a Change: that is refused too.
        let input =
            json!({"right": "full_access", "grant": true, "mailbox": h, "trustee": "alice"});
        assert!(
            serde_json::from_value::<Change>(input).is_err(),
            "{h:?} accepted in a Change"
        );
    }
    assert_eq!(
        w.exchange_requests().await,
        before,
        "no request reached Exchange"
    );
}
