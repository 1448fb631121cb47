//! The MCP tool list as an agent sees it (snapshot), its agreement with the core tool catalogue,
//! and the tenant-text sanitizer.

use exogate::mcp::ExogateMcp;
use exogate_core::tools::{ToolName, spec};
use serde_json::Value;

#[test]
fn tool_list_snapshot() {
    let tools = serde_json::to_value(ExogateMcp::tool_list()).expect("tools serialize");
    insta::assert_json_snapshot!("mcp_tool_list", tools);
}

#[test]
fn every_catalogue_tool_is_listed_with_all_four_hints_matching_the_catalogue() {
    let tools = ExogateMcp::tool_list();
    assert_eq!(tools.len(), ToolName::ALL.len());
    for name in ToolName::ALL {
        let s = spec(name);
        let tool = tools
            .iter()
            .find(|t| t.name == name.as_str())
            .unwrap_or_else(|| panic!("{} is missing", name.as_str()));
        // One source: title, description and every hint are the catalogue's.
        assert_eq!(tool.title.as_deref(), Some(s.title), "{}", name.as_str());
        assert_eq!(tool.description.as_deref(), Some(s.description));
        let a = tool.annotations.as_ref().expect("annotations");
        assert_eq!(a.title.as_deref(), Some(s.title), "{}", name.as_str());
        assert_eq!(a.open_world_hint, Some(s.open_world), "{}", name.as_str());
        assert_eq!(a.read_only_hint, Some(s.read_only), "{}", name.as_str());
        assert_eq!(a.destructive_hint, Some(s.destructive), "{}", name.as_str());
        assert_eq!(a.idempotent_hint, Some(s.idempotent), "{}", name.as_str());
        let desc = tool.description.as_deref().unwrap_or_default();
        assert!(
            desc.len() > 120,
            "{} needs a real description",
            name.as_str()
        );
        if name.is_write() {
            assert!(desc.contains("approval"), "{}: {desc}", name.as_str());
        }
        let meta = serde_json::to_value(tool.meta.as_ref().expect("meta")).unwrap();
        assert_eq!(meta["exogate/risk"], s.risk.as_str());
        assert_eq!(
            meta["exogate/approval"],
            if name.is_write() { "always" } else { "none" }
        );
        // Structured output: an object schema.
        let out = tool.output_schema.as_ref().expect("output schema");
        assert_eq!(out.get("type"), Some(&Value::from("object")));
        // Input schema: an object that refuses unknown fields, with examples for each string.
        let input = Value::Object((*tool.input_schema).clone());
        assert_eq!(input["type"], "object");
        assert_eq!(input["additionalProperties"], false, "{}", name.as_str());
        if let Some(props) = input["properties"].as_object() {
            for (field, schema) in props {
                assert!(
                    schema.get("examples").is_some(),
                    "{}.{field} has no example",
                    name.as_str()
                );
            }
        }
    }
}

/// One spelling per value: MCP's `exchange_admin` takes its state, badge and check time from the
/// view the API and the CLI print, in every kind of state (not connected, never checked,
/// checked, check failed). A connected company never checked is `unknown` everywhere; MCP said
/// `never_checked` while the API said `unknown`.
#[test]
fn mcp_company_status_is_the_views() {
    use exogate_core::model::{
        Company, CompanyId, Connection, ExchangeAdminState, StatusRecord, TenantId, Timestamp,
    };
    let at = Timestamp::from_unix_millis(1_795_931_856_407);
    let connection = Connection {
        tenant_id: TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap(),
        display_name: "Contoso".to_owned(),
        default_domain: "contoso.onmicrosoft.com".to_owned(),
        connected_at: at,
    };
    let checked = |state, last_good_state| StatusRecord {
        state,
        checked_at: at,
        last_good_at: Some(at),
        last_good_state,
        detail: String::new(),
    };
    let company = |connection: Option<Connection>, status: Option<StatusRecord>| Company {
        id: CompanyId::parse("contoso").unwrap(),
        name: "Contoso".to_owned(),
        connection,
        exchange_status: status,
        separate_approver: false,
        created_at: at,
    };
    let cases = [
        (company(None, None), "not_connected", false),
        (company(Some(connection.clone()), None), "unknown", false),
        (
            company(
                Some(connection.clone()),
                Some(checked(ExchangeAdminState::Configured, None)),
            ),
            "configured",
            true,
        ),
        (
            company(
                Some(connection),
                Some(checked(
                    ExchangeAdminState::CheckFailed,
                    Some(ExchangeAdminState::RoleMissing),
                )),
            ),
            "role_missing",
            false,
        ),
    ];
    for (c, state, ready) in cases {
        let view = exogate::views::CompanyView::of(&c);
        let mcp = exogate::mcp::wire::company(&c);
        assert_eq!(view.status.state, state);
        assert_eq!(mcp.exchange_admin.state, state);
        assert_eq!(mcp.exchange_admin.badge, view.status.badge, "{state}");
        assert_eq!(mcp.exchange_admin.checked_at, view.status.checked_at);
        assert_eq!(
            mcp.exchange_admin.last_check_failed,
            view.status.check_failed
        );
        assert_eq!(mcp.exchange_admin.ready, ready, "{state}");
        assert_eq!(
            (mcp.id, mcp.name, mcp.tenant_id, mcp.default_domain),
            (view.id, view.name, view.tenant_id, view.default_domain)
        );
    }
}
