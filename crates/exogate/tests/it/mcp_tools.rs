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
