//! The core flow end to end, through the real app against the emulator: a write request is
//! frozen, changes nothing until approved, then the worker applies exactly that change once and
//! verifies it by reading back.

use std::time::Duration;

use exogate_core::model::{CompanyId, IdentityInput, RequestId};
use exogate_core::ops;
use exogate_core::ops::requests::WriteInput;
use exogate_core::request::RequestState;
use exogate_core::tools::ToolName;

use crate::support::TestApp;

#[tokio::test]
async fn approved_grant_runs_once_and_is_verified() {
    let t = TestApp::start().await;
    let tech = t.actor("tech").await;
    let contoso = CompanyId::parse("contoso").unwrap();
    let request = ops::requests::request_write(
        t.app.ctx(),
        &tech,
        WriteInput {
            id: RequestId::from_uuid(uuid::Uuid::now_v7()),
            company: contoso.clone(),
            tool: ToolName::GrantFullAccess,
            mailbox: IdentityInput::parse("sales@contoso.onmicrosoft.com").unwrap(),
            trustee: IdentityInput::parse("bob@contoso.onmicrosoft.com").unwrap(),
            automapping: Some(false),
        },
    )
    .await
    .expect("request created");
    assert_eq!(request.state, RequestState::Pending);
    assert!(
        t.apply_log().await.is_empty(),
        "nothing applied before approval"
    );

    t.approve("manager", request.id).await;
    let done = t.wait_terminal(request.id, Duration::from_secs(30)).await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    let log = t.apply_log().await;
    let adds: Vec<_> = log
        .iter()
        .filter(|e| e["cmdlet"] == "Add-MailboxPermission")
        .collect();
    assert_eq!(adds.len(), 1, "{log:?}");
    assert_eq!(log.len(), 1, "{log:?}");
    t.stop().await;
}
