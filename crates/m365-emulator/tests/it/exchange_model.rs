//! Property test: random sequences of Full Access, Send As and Send on Behalf grants and
//! removals through InvokeCommand keep every Get-* answer equal to what the apply log implies
//! (the starting ground truth folded with the log's changes).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::exchange::Ex;
use crate::support::CONTOSO;

#[derive(Debug, Clone)]
enum Op {
    AddFullAccess(usize, usize, bool),
    RemoveFullAccess(usize, usize),
    AddSendAs(usize, usize),
    RemoveSendAs(usize, usize),
    AddSendOnBehalf(usize, usize),
    RemoveSendOnBehalf(usize, usize),
    OverwriteSendOnBehalf(usize, Vec<usize>),
}

const MAILBOXES: &[&str] = &["sales", "SUPPORT@contoso.onmicrosoft.com", "alice", "bob"];
/// Trustees by different identifiers (alias, UPN, group alias, SMTP).
const TRUSTEES: &[&str] = &[
    "alice",
    "bob@contoso.onmicrosoft.com",
    "carol@contoso.onmicrosoft.com",
    "salesteam",
    "Support",
];

fn op() -> impl Strategy<Value = Op> {
    let m = 0..MAILBOXES.len();
    let t = 0..TRUSTEES.len();
    prop_oneof![
        (m.clone(), t.clone(), any::<bool>()).prop_map(|(m, t, a)| Op::AddFullAccess(m, t, a)),
        (m.clone(), t.clone()).prop_map(|(m, t)| Op::RemoveFullAccess(m, t)),
        (m.clone(), t.clone()).prop_map(|(m, t)| Op::AddSendAs(m, t)),
        (m.clone(), t.clone()).prop_map(|(m, t)| Op::RemoveSendAs(m, t)),
        (m.clone(), t.clone()).prop_map(|(m, t)| Op::AddSendOnBehalf(m, t)),
        (m.clone(), t.clone()).prop_map(|(m, t)| Op::RemoveSendOnBehalf(m, t)),
        (m, proptest::collection::vec(t, 0..3)).prop_map(|(m, v)| Op::OverwriteSendOnBehalf(m, v)),
    ]
}

fn request(op: &Op) -> (&'static str, Value) {
    let hash = |key: &str, v: Value| json!({"@odata.type":"#Exchange.GenericHashTable", key: v});
    match op {
        Op::AddFullAccess(m, t, auto) => (
            "Add-MailboxPermission",
            json!({"Identity":MAILBOXES[*m],"User":TRUSTEES[*t],"AccessRights":["FullAccess"],"InheritanceType":"All","AutoMapping":auto,"Confirm":false}),
        ),
        Op::RemoveFullAccess(m, t) => (
            "Remove-MailboxPermission",
            json!({"Identity":MAILBOXES[*m],"User":TRUSTEES[*t],"AccessRights":["FullAccess"],"Confirm":false}),
        ),
        Op::AddSendAs(m, t) => (
            "Add-RecipientPermission",
            json!({"Identity":MAILBOXES[*m],"Trustee":TRUSTEES[*t],"AccessRights":["SendAs"],"Confirm":false}),
        ),
        Op::RemoveSendAs(m, t) => (
            "Remove-RecipientPermission",
            json!({"Identity":MAILBOXES[*m],"Trustee":TRUSTEES[*t],"AccessRights":["SendAs"],"Confirm":false}),
        ),
        Op::AddSendOnBehalf(m, t) => (
            "Set-Mailbox",
            json!({"Identity":MAILBOXES[*m],"GrantSendOnBehalfTo":hash("add", json!(TRUSTEES[*t])),"Confirm":false}),
        ),
        Op::RemoveSendOnBehalf(m, t) => (
            "Set-Mailbox",
            json!({"Identity":MAILBOXES[*m],"GrantSendOnBehalfTo":hash("Remove", json!([TRUSTEES[*t]])),"Confirm":false}),
        ),
        Op::OverwriteSendOnBehalf(m, ts) => (
            "Set-Mailbox",
            json!({"Identity":MAILBOXES[*m],"GrantSendOnBehalfTo":ts.iter().map(|t| TRUSTEES[*t]).collect::<Vec<_>>(),"Confirm":false}),
        ),
    }
}

/// The model: (mailbox name, right) -> trustee keys (SID for Full Access / Send As, object id
/// for Send on Behalf).
type Model = BTreeMap<(String, String), BTreeSet<String>>;

async fn ground_truth(ex: &Ex) -> Model {
    let (_, truth) = ex
        .env
        .control("GET", &format!("/exchange/{CONTOSO}/permissions"), None)
        .await;
    let mut model = Model::new();
    for p in truth["permissions"].as_array().expect("permissions") {
        let mailbox = p["mailbox"].as_str().unwrap_or_default().to_owned();
        let right = p["right"].as_str().unwrap_or_default();
        let key = match right {
            "SendAs" => (
                "SendAs",
                p["trustee_sid"].as_str().unwrap_or_default().to_owned(),
            ),
            "SendOnBehalf" => {
                let (_, o) = ex
                    .env
                    .control(
                        "GET",
                        &format!(
                            "/exchange/{CONTOSO}/objects/{}",
                            p["trustee"].as_str().unwrap_or_default()
                        ),
                        None,
                    )
                    .await;
                (
                    "SendOnBehalf",
                    o["external_directory_object_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            }
            r if r.split(", ").any(|x| x == "FullAccess")
                && p["deny"] == false
                && p["inherited"] == false =>
            {
                (
                    "FullAccess",
                    p["trustee_sid"].as_str().unwrap_or_default().to_owned(),
                )
            }
            _ => continue,
        };
        model
            .entry((mailbox, key.0.to_owned()))
            .or_default()
            .insert(key.1);
    }
    model
}

fn fold(mut model: Model, entries: &[Value]) -> Model {
    for e in entries {
        let c = &e["change"];
        let right = c["right"].as_str().unwrap_or_default().to_owned();
        if !["FullAccess", "SendAs", "SendOnBehalf"].contains(&right.as_str()) {
            continue;
        }
        let trustee = if right == "SendOnBehalf" {
            c["trustee_object_id"].as_str()
        } else {
            c["trustee_sid"].as_str()
        }
        .unwrap_or_default()
        .to_owned();
        let set = model
            .entry((c["mailbox"].as_str().unwrap_or_default().to_owned(), right))
            .or_default();
        match c["op"].as_str() {
            Some("add") => {
                set.insert(trustee);
            }
            Some("remove") => {
                set.remove(&trustee);
            }
            _ => {}
        }
    }
    model.retain(|_, v| !v.is_empty());
    model
}

/// What the Get-* cmdlets say, in the model's shape.
async fn observed(ex: &Ex) -> Model {
    let mut model = Model::new();
    let all = ex
        .cmd("Get-Recipient", json!({"ResultSize":"Unlimited"}))
        .await
        .value();
    let id_by_name: BTreeMap<String, String> = all
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap_or_default().to_owned(),
                r["ExternalDirectoryObjectId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let mailboxes = ex
        .cmd("Get-Mailbox", json!({"ResultSize":"Unlimited"}))
        .await
        .value();
    for mb in &mailboxes {
        let name = mb["Name"].as_str().unwrap_or_default().to_owned();
        for d in mb["GrantSendOnBehalfTo"].as_array().into_iter().flatten() {
            let id = id_by_name
                .get(d.as_str().unwrap_or_default())
                .cloned()
                .unwrap_or_default();
            model
                .entry((name.clone(), "SendOnBehalf".into()))
                .or_default()
                .insert(id);
        }
        let rows = ex
            .cmd("Get-MailboxPermission", json!({"Identity": mb["Guid"]}))
            .await
            .value();
        for r in rows {
            let full = r["AccessRights"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| a.as_str().unwrap_or_default().split(", "))
                .any(|x| x == "FullAccess");
            if full && r["Deny"] == false && r["IsInherited"] == false {
                model
                    .entry((name.clone(), "FullAccess".into()))
                    .or_default()
                    .insert(r["UserSid"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    let send_as = ex
        .cmd("Get-RecipientPermission", json!({"ResultSize":"Unlimited"}))
        .await
        .value();
    for r in send_as {
        model
            .entry((
                r["Identity"].as_str().unwrap_or_default().to_owned(),
                "SendAs".into(),
            ))
            .or_default()
            .insert(
                r["TrusteeSidString"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
    }
    model
}

#[test]
fn random_grant_sequences_keep_reads_equal_to_the_apply_log() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ex = rt.block_on(Ex::demo());
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..25), |ops| {
        rt.block_on(async {
            let (s, _) = ex
                .env
                .control(
                    "PUT",
                    &format!("/exchange/{CONTOSO}/directory"),
                    Some(crate::exchange::demo_seed()),
                )
                .await;
            prop_assert_eq!(s, 200);
            let start = ground_truth(&ex).await;
            let (_, log) = ex.env.control("GET", "/apply-log", None).await;
            let since = log["entries"].as_array().map_or(0, |a| a.len());
            for op in &ops {
                let (cmdlet, params) = request(op);
                let r = ex.cmd(cmdlet, params).await;
                prop_assert_eq!(
                    r.status,
                    200,
                    "{:?}: {}",
                    op,
                    String::from_utf8_lossy(&r.body)
                );
            }
            let (_, log) = ex
                .env
                .control("GET", &format!("/apply-log?since={since}"), None)
                .await;
            let entries = log["entries"].as_array().cloned().unwrap_or_default();
            let expected = fold(start, &entries);
            let seen = observed(&ex).await;
            prop_assert_eq!(seen, expected);
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
