//! Group membership: `Get-DistributionGroupMember` over `InvokeCommand` and `$batch`, and the
//! control API's membership ground truth and edits (`/_emulator/exchange/{tenant}/groups…`).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::exchange::{Ex, Resp};
use crate::support::{CONTOSO, FABRIKAM};

const NOT_FOUND: &str = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException";
const DGM: &str = "Get-DistributionGroupMember";

fn body_text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn exception_type(r: &Resp) -> Value {
    r.json()["error"]["innererror"]["internalexception"]["type"].clone()
}

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["Name"].as_str().expect("Name is a string").to_owned())
        .collect()
}

impl Ex {
    /// Every row of `cmdlet` with `params`, following nextLinks with `prefer`; also returns the
    /// number of pages and the warnings of every page.
    async fn pages(&self, cmdlet: &str, params: Value, prefer: &str) -> (Vec<Value>, usize) {
        let body = json!({"CmdletInput":{"CmdletName":cmdlet,"Parameters":params}})
            .to_string()
            .into_bytes();
        let mut path = format!("/adminapi/beta/{CONTOSO}/InvokeCommand");
        let mut rows = Vec::new();
        let mut pages = 0;
        loop {
            let r = self
                .post(
                    &path,
                    Some(&self.token),
                    body.clone(),
                    &[("Prefer", prefer)],
                )
                .await;
            assert_eq!(r.status, 200, "{}", body_text(&r));
            assert!(r.warnings().is_empty(), "{:?}", r.warnings());
            pages += 1;
            rows.extend(r.value());
            match r.json()["@odata.nextLink"].as_str() {
                Some(link) => path = link[self.env.url("").len()..].to_owned(),
                None => return (rows, pages),
            }
        }
    }

    async fn truth_groups(&self) -> Vec<Value> {
        let (s, b) = self
            .env
            .control("GET", &format!("/exchange/{CONTOSO}/groups"), None)
            .await;
        assert_eq!(s, 200, "{b}");
        b["groups"].as_array().expect("groups is an array").clone()
    }

    async fn truth_members(&self, group: &str) -> Vec<String> {
        let groups = self.truth_groups().await;
        let g = groups
            .iter()
            .find(|g| g["name"] == group)
            .unwrap_or_else(|| panic!("no group {group} in {groups:?}"));
        g["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Sales Team's only member is carol; her row is exactly her Get-Recipient row (same property
/// names, annotations and values).
#[tokio::test]
async fn sales_team_lists_carol_with_the_get_recipient_row() {
    let ex = Ex::demo().await;
    let r = ex.cmd(DGM, json!({"Identity": "Sales Team"})).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert!(r.warnings().is_empty());
    let rows = r.value();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let carol = &rows[0];
    assert_eq!(carol["Alias"], "carol");
    let recipient = ex
        .cmd(
            "Get-Recipient",
            json!({"Identity": "carol@contoso.onmicrosoft.com"}),
        )
        .await;
    assert_eq!(recipient.status, 200);
    assert_eq!(carol, &recipient.value()[0]);
    for key in [
        "Identity",
        "Name",
        "Alias",
        "DisplayName",
        "PrimarySmtpAddress",
        "ExternalDirectoryObjectId",
        "Guid",
        "ExchangeObjectId",
        "RecipientType",
        "RecipientTypeDetails",
    ] {
        assert!(carol.get(key).is_some(), "{key} missing from {carol}");
    }
    assert_eq!(carol["RecipientTypeDetails"], "UserMailbox");
    assert_eq!(carol["Name"], carol["ExternalDirectoryObjectId"]);
    // Every identity of the group works: alias, SMTP address, Guid, ExternalDirectoryObjectId.
    let truth = ex.truth_groups().await;
    let team = truth.iter().find(|g| g["name"] == "Sales Team").unwrap();
    assert_eq!(team["mail_enabled"], true);
    let oid = team["object_id"].as_str().unwrap().to_owned();
    let guid = ex
        .cmd("Get-Recipient", json!({"Identity": "salesteam"}))
        .await
        .value()[0]["Guid"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in [
        "SALESTEAM",
        "salesteam@contoso.onmicrosoft.com",
        oid.as_str(),
        guid.as_str(),
    ] {
        let r = ex
            .cmd(
                DGM,
                json!({"Identity": id, "ReadFromDomainController": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{id}: {}", body_text(&r));
        assert_eq!(names(&r.value()), names(&rows), "{id}");
    }
    // $select is honoured.
    let r = ex
        .invoke_as(
            CONTOSO,
            Some(&ex.token),
            "?$select=Name,PrimarySmtpAddress",
            DGM,
            json!({"Identity": "Sales Team"}),
            &[],
        )
        .await;
    let row = r.value()[0].as_object().unwrap().clone();
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["Name", "PrimarySmtpAddress"]);
    assert_eq!(row["PrimarySmtpAddress"], "carol@contoso.onmicrosoft.com");
}

/// Only mail-enabled groups are distribution groups: a non-mail-enabled security group, a
/// mailbox and an unknown name are all "not found", with the status the knob sets.
#[tokio::test]
async fn non_mail_groups_mailboxes_and_unknown_names_are_not_found() {
    let ex = Ex::demo().await;
    for id in ["All Staff", "allstaff", "alice", "sales", "nobody"] {
        let r = ex.cmd(DGM, json!({"Identity": id})).await;
        assert_eq!(r.status, 404, "{id}: {}", body_text(&r));
        assert_eq!(exception_type(&r), NOT_FOUND, "{id}");
        assert_eq!(r.json()["error"]["code"], "NotFound");
        let details = r.json()["error"]["details"][0]["message"].clone();
        assert!(
            details
                .as_str()
                .unwrap()
                .contains(&format!("'{id}' couldn't be found")),
            "{details}"
        );
    }
    ex.knobs(None, json!({"not_found_status": 400})).await;
    let r = ex.cmd(DGM, json!({"Identity": "All Staff"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(exception_type(&r), NOT_FOUND);
}

#[tokio::test]
async fn missing_identity_is_400_like_get_mailbox_permission() {
    let ex = Ex::demo().await;
    let r = ex.cmd(DGM, json!({})).await;
    let p = ex.cmd("Get-MailboxPermission", json!({})).await;
    assert_eq!(r.status, 400, "{}", body_text(&r));
    assert_eq!(exception_type(&r), "System.InvalidOperationException");
    assert_eq!(exception_type(&r), exception_type(&p));
    assert_eq!(
        r.json()["error"]["details"],
        p.json()["error"]["details"],
        "same error as Get-MailboxPermission"
    );
    let r = ex
        .cmd(DGM, json!({"Identity": "Sales Team", "Nope": 1}))
        .await;
    assert_eq!(r.status, 400);
}

/// A group of 1,500 members: the default ResultSize gives 1,000 rows and the truncation
/// warning; Unlimited pages through all 1,500 in order with nextLinks and no duplicates.
#[tokio::test]
async fn result_size_truncates_at_1000_and_unlimited_pages_through_1500() {
    let ex = Ex::demo().await;
    let users: Vec<String> = (0..1500).map(|i| format!("member{i:04}")).collect();
    let mut objects: Vec<Value> = users
        .iter()
        .map(|u| json!({"type": "user_mailbox", "name": u}))
        .collect();
    objects.push(
        json!({"type": "mail_enabled_security_group", "name": "Big Group",
                        "alias": "big", "members": users}),
    );
    let (s, b) = ex
        .env
        .control(
            "PUT",
            &format!("/exchange/{CONTOSO}/directory"),
            Some(json!({"objects": objects})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(ex.truth_members("Big Group").await, users);

    let r = ex.cmd(DGM, json!({"Identity": "big"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(names(&r.value()), users[..1000]);
    assert!(r.json().get("@odata.nextLink").is_none());
    let w = r.warnings();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].ends_with("increase the value for the ResultSize parameter."),
        "{w:?}"
    );
    let r = ex
        .cmd(DGM, json!({"Identity": "big", "ResultSize": 1500}))
        .await;
    assert!(r.warnings().is_empty());

    let (rows, pages) = ex
        .pages(
            DGM,
            json!({"Identity": "big", "ResultSize": "Unlimited"}),
            "odata.maxpagesize=400",
        )
        .await;
    assert_eq!(pages, 4);
    let got = names(&rows);
    assert_eq!(got, users);
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 1500);
    // The default page size (1,000) pages too.
    let (rows, pages) = ex
        .pages(
            DGM,
            json!({"Identity": "big", "ResultSize": "Unlimited"}),
            "",
        )
        .await;
    assert_eq!((rows.len(), pages), (1500, 2));
}

/// Two groups in one `$batch`, each answered with its own members.
#[tokio::test]
async fn batch_reads_two_groups() {
    let ex = Ex::demo().await;
    let (s, b) = ex
        .env
        .control(
            "POST",
            &format!("/exchange/{CONTOSO}/objects"),
            Some(json!({"type": "mail_enabled_security_group", "name": "Ops",
                        "members": ["alice", "support", "Sales Team"]})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["members"].as_array().unwrap().len(), 3);
    let item = |id: &str, group: &str| {
        json!({"id": id, "method": "POST",
               "url": format!("https://outlook.office365.com/adminapi/beta/{CONTOSO}/InvokeCommand"),
               "headers": {"X-CmdletName": DGM},
               "body": {"CmdletInput": {"CmdletName": DGM, "Parameters": {"Identity": group}}}})
    };
    let body =
        json!({"requests": [item("1", "Sales Team"), item("2", "ops"), item("3", "All Staff")]});
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/$batch"),
            Some(&ex.token),
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let v = r.json();
    let responses = v["responses"].as_array().unwrap();
    let by_id = |id: &str| {
        responses
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("no response {id}: {v}"))
    };
    assert_eq!(by_id("1")["status"], 200);
    assert_eq!(by_id("1")["body"]["value"][0]["Alias"], "carol");
    assert_eq!(by_id("1")["body"]["value"].as_array().unwrap().len(), 1);
    assert_eq!(by_id("2")["status"], 200);
    let ops: Vec<(&str, &str)> = by_id("2")["body"]["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap(),
                r["RecipientTypeDetails"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("alice", "UserMailbox"),
            ("support", "SharedMailbox"),
            ("Sales Team", "MailUniversalSecurityGroup")
        ]
    );
    assert_eq!(by_id("3")["status"], 404);
}

/// A deleted object leaves every group: Get-DistributionGroupMember and the ground truth.
#[tokio::test]
async fn deleting_a_member_removes_it_everywhere() {
    let ex = Ex::demo().await;
    assert_eq!(
        ex.truth_members("All Staff").await.len(),
        3,
        "alice, bob, carol"
    );
    let (s, b) = ex
        .env
        .control(
            "DELETE",
            &format!("/exchange/{CONTOSO}/objects/carol@contoso.onmicrosoft.com"),
            None,
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let r = ex.cmd(DGM, json!({"Identity": "Sales Team"})).await;
    assert_eq!(r.status, 200);
    assert!(r.value().is_empty(), "{:?}", r.value());
    assert!(r.warnings().is_empty());
    assert!(ex.truth_members("Sales Team").await.is_empty());
    assert_eq!(ex.truth_members("All Staff").await, ["alice", "bob"]);
}

/// The ground truth of the demo, and adding and removing members through the control API;
/// membership edits never enter the apply log.
#[tokio::test]
async fn control_api_adds_and_removes_members() {
    let ex = Ex::demo().await;
    let groups = ex.truth_groups().await;
    let summary: Vec<(String, bool, usize)> = groups
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["mail_enabled"].as_bool().unwrap(),
                g["members"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("Sales Team".to_owned(), true, 1),
            ("All Staff".to_owned(), false, 3)
        ]
    );
    let carol = &groups[0]["members"][0];
    assert_eq!(carol["kind"], "user_mailbox");
    assert_eq!(carol["name"], carol["object_id"]);
    assert_eq!(
        ex.truth_members("All Staff").await[..2],
        ["alice".to_owned(), "bob".to_owned()]
    );
    let base = format!("/exchange/{CONTOSO}/groups");
    let add = |group: &str, member: &str| {
        let path = format!("{base}/{}/members", group.replace(' ', "%20"));
        let body = json!({ "member": member });
        let env = &ex.env;
        async move { env.control("POST", &path, Some(body)).await }
    };
    let (s, b) = add("Sales Team", "alice@contoso.onmicrosoft.com").await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(ex.truth_members("Sales Team").await.len(), 2);
    let (s, _) = add("salesteam", "ALICE").await;
    assert_eq!(s, 409);
    let (s, _) = add("No Such Group", "alice").await;
    assert_eq!(s, 404);
    let (s, _) = add("alice", "bob").await;
    assert_eq!(s, 404, "a mailbox is no group");
    let (s, _) = add("Sales Team", "nobody").await;
    assert_eq!(s, 404);
    let (s, _) = add("Sales Team", "Sales Team").await;
    assert_eq!(s, 400, "a group is not its own member");
    // Nesting the non-mail-enabled group into Sales Team: it is listed with RecipientType Group.
    let (s, b) = add("Sales Team", "All Staff").await;
    assert_eq!(s, 201, "{b}");
    let r = ex.cmd(DGM, json!({"Identity": "Sales Team"})).await;
    let rows: Vec<(String, String)> = r
        .value()
        .iter()
        .map(|r| {
            (
                r["Alias"].as_str().unwrap().to_owned(),
                r["RecipientType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("carol".to_owned(), "UserMailbox".to_owned()),
            ("alice".to_owned(), "UserMailbox".to_owned()),
            ("allstaff".to_owned(), "Group".to_owned()),
        ]
    );

    let (s, b) = ex
        .env
        .control(
            "DELETE",
            &format!("{base}/Sales%20Team/members/alice"),
            None,
        )
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, _) = ex
        .env
        .control(
            "DELETE",
            &format!("{base}/Sales%20Team/members/alice"),
            None,
        )
        .await;
    assert_eq!(s, 404, "no longer a member");
    let (s, _) = ex
        .env
        .control(
            "DELETE",
            &format!("{base}/Sales%20Team/members/nobody"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = ex
        .env
        .control("DELETE", &format!("{base}/nogroup/members/alice"), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        ex.truth_members("Sales Team").await[1..],
        ["All Staff".to_owned()]
    );
    let (s, log) = ex
        .env
        .control("GET", &format!("/apply-log?tenant={CONTOSO}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        log["entries"],
        json!([]),
        "membership is not an Exchange write"
    );
}

/// Generated directories give mail-enabled groups members, and nest only a lower-numbered
/// group into a higher-numbered one; Get-DistributionGroupMember agrees with the ground truth.
#[tokio::test]
async fn generated_directories_have_members_and_nest_lower_into_higher() {
    let ex = Ex::demo().await;
    let (s, b) = ex
        .env
        .control(
            "PUT",
            &format!("/exchange/{CONTOSO}/directory"),
            Some(json!({"generate":{"mailboxes":3000,"seed":4}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let groups = ex.truth_groups().await;
    let mut with_members = 0;
    let mut nested = 0;
    for g in &groups {
        let name = g["name"].as_str().unwrap();
        let members = g["members"].as_array().unwrap();
        if g["mail_enabled"] == false {
            assert!(members.is_empty(), "{name}");
            continue;
        }
        with_members += usize::from(!members.is_empty());
        let mut users = 0;
        for m in members {
            let mname = m["name"].as_str().unwrap();
            match m["kind"].as_str().unwrap() {
                "mail_enabled_security_group" => {
                    nested += 1;
                    assert!(
                        mname.starts_with("group") && mname < name,
                        "{mname} in {name}"
                    );
                }
                kind => {
                    assert_eq!(kind, "user_mailbox", "{mname} in {name}");
                    users += 1;
                }
            }
        }
        assert!(users <= 8, "{name}: {users}");
        let r = ex
            .cmd(DGM, json!({"Identity": name, "ResultSize": "Unlimited"}))
            .await;
        assert_eq!(r.status, 200);
        let ids: Vec<Value> = r
            .value()
            .iter()
            .map(|r| r["ExternalDirectoryObjectId"].clone())
            .collect();
        let truth: Vec<Value> = members.iter().map(|m| m["object_id"].clone()).collect();
        assert_eq!(ids, truth, "{name}");
    }
    assert!(
        with_members > 40,
        "{with_members} of {} groups",
        groups.len()
    );
    assert!(nested > 0, "no nested group");
}

/// A read-only role (Global Reader) may run Get-DistributionGroupMember.
#[tokio::test]
async fn read_only_role_may_list_group_members() {
    let ex = Ex::demo().await;
    let (s, b) = ex
        .env
        .control(
            "PUT",
            &format!("/exchange/{FABRIKAM}/directory"),
            Some(crate::exchange::demo_seed()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = ex
        .env
        .control(
            "PUT",
            &format!("/tenants/{FABRIKAM}/service-principals/e0e0e0e0-0000-4000-8000-000000000001/roles/f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let token = ex.env.exchange_token(FABRIKAM).await;
    let r = ex
        .invoke_as(
            FABRIKAM,
            Some(&token),
            "",
            DGM,
            json!({"Identity": "Sales Team"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(r.value()[0]["Alias"], "carol");
    let r = ex
        .invoke_as(
            FABRIKAM,
            Some(&token),
            "",
            "Add-RecipientPermission",
            json!({"Identity":"sales","Trustee":"bob","AccessRights":["SendAs"]}),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
}
