//! The setup story (Authorize, role, Re-check) and the approval flow in a REAL headless Chromium
//! (Debian's `/usr/bin/chromium` driven through `/usr/bin/chromedriver` with fantoccini).
//! Screenshots go to `<workspace>/test-output/`. No sleeps: every wait is a WebDriver wait with a
//! time limit.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::web::{CONTOSO, NORTHWIND, WebApp};

const EXCHANGE_APP: &str = "e0e0e0e0-0000-4000-8000-000000000001";
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free loopback port, and a WebDriver session on a fresh profile.
pub(crate) struct Chrome {
    pub(crate) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    name: &'static str,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Chrome {
    pub(crate) async fn start(name: &'static str) -> Chrome {
        let port = free_port();
        let mut driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts (apt install chromium-driver)");
        // Wait for its "started successfully" line (an event, not a sleep).
        let out = driver.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("read") {
                if line.contains("started successfully") {
                    return;
                }
            }
            panic!("chromedriver exited");
        })
        .await
        .expect("chromedriver ready in time");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("webdriver session");
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-output");
        std::fs::create_dir_all(&shots).expect("test-output dir");
        Chrome {
            client,
            driver,
            _profile: profile,
            shots,
            name,
        }
    }

    pub(crate) async fn shot(&self, step: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{}-{step}.png", self.name)), png)
            .expect("write screenshot");
    }

    pub(crate) async fn wait_css(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                self.shot("failure").await;
                let src = self.client.source().await.unwrap_or_default();
                panic!("`{css}` did not appear: {e}\n{src}");
            }
        }
    }

    pub(crate) async fn login(&self, base: &str, user: &str) {
        self.client.goto(&format!("{base}/login")).await.unwrap();
        self.wait_css("#user").await.send_keys(user).await.unwrap();
        self.client
            .find(Locator::Css("#password"))
            .await
            .unwrap()
            .send_keys(WebApp::password(user))
            .await
            .unwrap();
        self.client
            .find(Locator::Css("#login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_css("#companies").await;
    }

    /// Clicks Authorize and switches to the consent tab it opens; returns the first tab.
    async fn authorize_in_new_tab(&self) -> fantoccini::wd::WindowHandle {
        let first = self.client.window().await.unwrap();
        let before = self.client.windows().await.unwrap();
        self.client
            .find(Locator::Css("#authorize"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("body"))
            .await
            .unwrap();
        let mut new_tab = None;
        let deadline = tokio::time::Instant::now() + WAIT;
        while new_tab.is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no new tab opened");
            let now = self.client.windows().await.unwrap();
            new_tab = now.into_iter().find(|w| !before.contains(w));
        }
        self.client
            .switch_to_window(new_tab.unwrap())
            .await
            .unwrap();
        first
    }

    pub(crate) async fn stop(self) {
        let _ = self.client.close().await;
        let mut d = self.driver;
        let _ = d.kill().await;
    }
}

async fn badge_is(c: &Chrome, state: &str, text: &str) {
    let b = c
        .wait_css(&format!("#exchange-badge[data-state=\"{state}\"]"))
        .await;
    assert_eq!(b.text().await.unwrap(), text);
}

#[tokio::test]
async fn browser_seed_setup_story_authorize_role_recheck_and_wrong_tenant() {
    let w = WebApp::start().await;
    let c = Chrome::start("setup").await;
    c.login(&w.base, "tech").await;

    // Northwind: connected, Exchange app not consented: red "Not configured".
    c.client
        .goto(&w.url("/companies/northwind/integrations"))
        .await
        .unwrap();
    badge_is(&c, "not_configured", "Not configured").await;
    let class = c
        .client
        .find(Locator::Css("#exchange-badge"))
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap()
        .unwrap();
    assert!(class.contains("red"), "{class}");
    c.shot("1-northwind-not-configured").await;
    // A marker that a reload would wipe.
    c.client
        .execute("window.__exogateNoReload = 42;", vec![])
        .await
        .unwrap();

    // Authorize opens Microsoft's (the emulator's) consent page in a NEW tab.
    let first = c.authorize_in_new_tab().await;
    let url = c.client.current_url().await.unwrap();
    assert!(
        url.as_str().starts_with(&w.emulator.base_url),
        "consent tab is on the emulator: {url}"
    );
    assert!(
        url.path()
            .contains(&format!("{NORTHWIND}/v2.0/adminconsent"))
    );
    let account = c.wait_css("select#account").await;
    account
        .select_by_value(&format!("admin:{NORTHWIND}"))
        .await
        .unwrap();
    c.shot("2-consent-page").await;
    c.client
        .find(Locator::Css("button#accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The callback page tells the person to switch back.
    c.wait_css("#consent-result[data-outcome=\"authorized\"]")
        .await;
    let text = c
        .client
        .find(Locator::Css(".switch-back"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("Switch back"), "{text}");
    c.shot("3-consent-done").await;
    let consent_tab = c.client.window().await.unwrap();

    // Back on the first tab: without a reload the badge reads "Role missing".
    c.client.switch_to_window(first.clone()).await.unwrap();
    badge_is(&c, "role_missing", "Role missing").await;
    let marker = c
        .client
        .execute("return window.__exogateNoReload;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(42), "the page must not reload");
    let fix = c
        .client
        .find(Locator::Css("#exchange-fix"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fix.contains("Exchange Administrator"), "{fix}");
    c.shot("4-northwind-role-missing").await;

    // Step 2 on the emulator's "Entra admin centre" that the page links to: assign Exchange
    // Administrator.
    let roles = c
        .client
        .find(Locator::Css("#roles-link"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        roles,
        format!("{}/_admin/{NORTHWIND}/roles", w.emulator.base_url)
    );
    c.client.switch_to_window(consent_tab).await.unwrap();
    c.client.goto(&roles).await.unwrap();
    c.wait_css(&format!("button#assign-exchange-admin-{EXCHANGE_APP}"))
        .await
        .click()
        .await
        .unwrap();
    c.wait_css(&format!("button#remove-exchange-admin-{EXCHANGE_APP}"))
        .await;
    c.shot("5-role-assigned").await;

    // Re-check: green "Exchange Admin", still without a reload.
    c.client.switch_to_window(first.clone()).await.unwrap();
    c.client
        .find(Locator::Css("#recheck"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    badge_is(&c, "configured", "Exchange Admin").await;
    let class = c
        .client
        .find(Locator::Css("#exchange-badge"))
        .await
        .unwrap()
        .attr("class")
        .await
        .unwrap()
        .unwrap();
    assert!(class.contains("green"), "{class}");
    let last = c
        .client
        .find(Locator::Css("#last-check"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(last, "never");
    assert_eq!(
        c.client
            .execute("return window.__exogateNoReload;", vec![])
            .await
            .unwrap(),
        json!(42)
    );
    c.shot("6-northwind-exchange-admin").await;

    // Tailspin: "Tenant ID not found" with the reconnect advice.
    c.client
        .goto(&w.url("/companies/tailspin/integrations"))
        .await
        .unwrap();
    badge_is(&c, "tenant_not_found", "Tenant ID not found").await;
    let help = c
        .client
        .find(Locator::Css("#exchange-help"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        help.contains("Disconnect and reconnect the Microsoft 365 integration"),
        "{help}"
    );
    assert!(c.client.find(Locator::Css("#reconnect")).await.is_ok());
    c.shot("7-tailspin-tenant-not-found").await;

    // Consent given by an admin of ANOTHER tenant: the wrong-tenant state.
    c.client
        .goto(&w.url("/companies/fabrikam/integrations"))
        .await
        .unwrap();
    badge_is(&c, "role_missing", "Role missing").await;
    let fab_first = c.authorize_in_new_tab().await;
    c.wait_css("select#account")
        .await
        .select_by_value(&format!("admin:{CONTOSO}"))
        .await
        .unwrap();
    c.client
        .find(Locator::Css("button#accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait_css("#consent-result[data-outcome=\"wrong_tenant\"]")
        .await;
    c.wait_css("#consent-badge[data-state=\"wrong_tenant\"]")
        .await;
    c.shot("8-wrong-tenant-callback").await;
    c.client.switch_to_window(fab_first).await.unwrap();
    badge_is(&c, "wrong_tenant", "Consent went to another tenant").await;
    let fix = c
        .client
        .find(Locator::Css("#exchange-fix"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(fix.contains("not your own"), "{fix}");
    c.shot("9-fabrikam-wrong-tenant").await;

    // The tab regaining focus re-checks by itself: the role is removed in the admin centre
    // tab, and the Northwind tab's visibilitychange/focus handlers turn the badge back.
    c.client
        .goto(&w.url("/companies/northwind/integrations"))
        .await
        .unwrap();
    badge_is(&c, "configured", "Exchange Admin").await;
    let northwind_tab = c.client.window().await.unwrap();
    let admin_tab = c.client.new_window(true).await.unwrap().handle;
    c.client.switch_to_window(admin_tab).await.unwrap();
    c.client.goto(&roles).await.unwrap();
    c.wait_css(&format!("button#remove-exchange-admin-{EXCHANGE_APP}"))
        .await
        .click()
        .await
        .unwrap();
    c.wait_css(&format!("button#assign-exchange-admin-{EXCHANGE_APP}"))
        .await;
    c.client.switch_to_window(northwind_tab).await.unwrap();
    c.client
        .execute(
            "document.dispatchEvent(new Event('visibilitychange')); window.dispatchEvent(new Event('focus'));",
            vec![],
        )
        .await
        .unwrap();
    badge_is(&c, "role_missing", "Role missing").await;
    c.shot("10-northwind-focus-recheck").await;
    // Nothing about Fabrikam's connection changed.
    let fab = w.company("fabrikam").await;
    assert_eq!(
        fab.connection.unwrap().tenant_id.to_string(),
        super::web::FABRIKAM
    );
    c.stop().await;
    w.stop().await;
}

#[tokio::test]
async fn browser_request_full_access_manager_approves_exactly_one_change() {
    let w = WebApp::start().await;
    let c = Chrome::start("approval").await;
    c.login(&w.base, "tech").await;
    c.client
        .goto(&w.url("/companies/contoso/mailbox?identity=sales"))
        .await
        .unwrap();
    c.wait_css("#grant-tool")
        .await
        .select_by_value("grant_full_access")
        .await
        .unwrap();
    c.client
        .find(Locator::Css("#grant-trustee"))
        .await
        .unwrap()
        .send_keys("bob")
        .await
        .unwrap();
    c.shot("1-mailbox-sales").await;
    c.client
        .find(Locator::Css("#request-change"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = c
        .wait_css("#request-state[data-request-state=\"pending\"]")
        .await;
    let id = state.attr("data-request-id").await.unwrap().unwrap();
    c.shot("2-request-pending").await;

    // The manager sees it in Approvals and approves it.
    c.client
        .find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait_css("#user").await;
    c.login(&w.base, "manager").await;
    c.client.goto(&w.url("/approvals")).await.unwrap();
    let card = c.wait_css(&format!("#pending #request-{id}")).await;
    let text = card.text().await.unwrap();
    assert!(text.contains("grant Full Access"), "{text}");
    assert!(text.contains("bob@contoso.onmicrosoft.com"), "{text}");
    assert!(text.contains("sales@contoso.onmicrosoft.com"), "{text}");
    assert!(text.contains("tech via web"), "{text}");
    assert!(text.contains("manager or higher"), "{text}");
    card.find(Locator::Css("input.reason"))
        .await
        .unwrap()
        .send_keys("ticket 4711")
        .await
        .unwrap();
    c.shot("3-approvals").await;
    card.find(Locator::Css(&format!("#approve-{id}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The request page follows the execution live and shows the verified after-state.
    c.wait_css("#request-state[data-request-state=\"succeeded\"]")
        .await;
    let result = c.wait_css("#result-0").await.text().await.unwrap();
    assert!(result.contains("Before: absent"), "{result}");
    assert!(result.contains("After: present"), "{result}");
    assert!(result.contains("verified in Exchange"), "{result}");
    c.shot("4-request-succeeded").await;

    // The emulator's apply log: exactly one Add-MailboxPermission.
    let log: Value = w
        .http
        .get(format!("{}/_emulator/apply-log", w.emulator.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["entries"].as_array().unwrap();
    let adds: Vec<&Value> = entries
        .iter()
        .filter(|e| e["cmdlet"] == "Add-MailboxPermission")
        .collect();
    assert_eq!(adds.len(), 1, "{log}");
    assert_eq!(entries.len(), 1, "no other change: {log}");
    assert_eq!(adds[0]["tenant"], CONTOSO);
    c.stop().await;
    w.stop().await;
}
