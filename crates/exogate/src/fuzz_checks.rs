//! Properties of the edge's parsers of outside input, checked on any input.
//!
//! One function per fuzz target of `fuzz/` (coverage-guided, nightly, `scripts/fuzz.sh`); the
//! proptest tests of `tests/it/fuzz_props.rs` call the same functions on stable. Each panics
//! when a property breaks.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{Config, EXAMPLE};
use crate::edge::parse_authority;
use crate::inventory_view::csv_cell;
use crate::mcp::wire::{
    ChangeArgs, FindUserAccessArgs, GrantFullAccessArgs, MailboxArgs, NoArgs, RequestIdArgs,
};

/// Reads one CSV cell as a spreadsheet would: unquoted, `""` as `"`. `None` when the text is
/// not one well-formed cell (a quote, comma or line break outside quotes, an unclosed quote).
pub fn read_csv_cell(cell: &str) -> Option<String> {
    match cell.strip_prefix('"') {
        Some(rest) => {
            let inner = rest.strip_suffix('"')?;
            // Inside, every quote comes in a pair.
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '"' && chars.next() != Some('"') {
                    return None;
                }
                out.push(c);
            }
            Some(out)
        }
        None if cell.contains([',', '"', '\n', '\r']) => None,
        None => Some(cell.to_owned()),
    }
}

/// A CSV export cell: one well-formed cell whose value is the text, prefixed with `'` when a
/// spreadsheet would read the text as a formula, so no value starts with `=`, `+`, `-`, `@`,
/// tab or carriage return.
pub fn csv_export_cell(s: &str) {
    let cell = csv_cell(s);
    let value = read_csv_cell(&cell).unwrap_or_else(|| panic!("{s:?} gave {cell:?}"));
    assert!(
        !value.starts_with(['=', '+', '-', '@', '\t', '\r']),
        "{s:?} reads as {value:?}"
    );
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        assert_eq!(value, format!("'{s}"));
    } else {
        assert_eq!(value, s);
    }
    // A cell never breaks the row: line breaks and commas only inside quotes.
    if cell.contains([',', '\n', '\r']) {
        assert!(cell.starts_with('"') && cell.ends_with('"'), "{cell:?}");
    }
}

/// The configuration file: any text is a `Config` or a `ConfigError` with a stable code, and a
/// secret set in an otherwise valid file shows in neither the `Config`'s `Debug` nor an error.
pub fn config_text(text: &str) {
    match Config::from_toml(text) {
        Ok(c) => {
            let _ = format!("{c:?}");
        }
        Err(e) => {
            assert!(
                matches!(e.code(), "config_invalid" | "config_unreadable"),
                "{e:?}"
            );
            let _ = e.to_string();
        }
    }
    // The example with `text` spliced into a section: the secret stays hidden whatever else
    // the file says.
    let canary = "canary-Zq7vX2pL9sK4mW8r";
    let spliced = EXAMPLE.replacen(
        "client_secret = \"replace-me\"",
        &format!("client_secret = \"{canary}\"\n{text}"),
        1,
    );
    match Config::from_toml(&spliced) {
        Ok(c) => {
            let shown = format!("{c:?}");
            assert!(!shown.contains(canary), "{shown}");
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(canary), "{text:?}: {shown}");
        }
    }
}

fn args<T: DeserializeOwned>(v: &Value, allowed: &[&str]) -> Option<T> {
    // As the MCP server reads them: the `arguments` object into the tool's type.
    let parsed = serde_json::from_value::<T>(v.clone()).ok()?;
    let obj = v
        .as_object()
        .expect("only an object deserializes into tool arguments");
    for k in obj.keys() {
        assert!(
            allowed.contains(&k.as_str()),
            "unknown field {k:?} accepted"
        );
    }
    Some(parsed)
}

/// MCP tool arguments: any JSON is refused or read into exactly the fields of a tool (unknown
/// fields are refused), and every string argument then goes through the core's identity, company
/// and request id checks with their properties.
pub fn mcp_arguments(body: &[u8]) {
    // MCP's `tools/call` carries `arguments` as a JSON object (rmcp types it as a map), so
    // nothing else reaches a tool.
    let Ok(v @ Value::Object(_)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let field = exogate_core::fuzz_checks::identities;
    let _ = args::<NoArgs>(&v, &[]);
    if let Some(a) = args::<MailboxArgs>(&v, &["company", "mailbox"]) {
        field(&a.company);
        field(&a.mailbox);
    }
    if let Some(a) = args::<ChangeArgs>(&v, &["company", "mailbox", "trustee"]) {
        field(&a.company);
        field(&a.mailbox);
        field(&a.trustee);
    }
    if let Some(a) =
        args::<GrantFullAccessArgs>(&v, &["company", "mailbox", "trustee", "automapping"])
    {
        if v.get("automapping").is_none() {
            assert!(a.automapping, "automapping defaults to on");
        }
        field(&a.trustee);
    }
    if let Some(a) = args::<RequestIdArgs>(&v, &["request_id"]) {
        field(&a.request_id);
    }
    if let Some(a) = args::<FindUserAccessArgs>(&v, &["user", "company"]) {
        field(&a.user);
        if let Some(c) = &a.company {
            field(c);
        }
    }
}

/// The `Host` header (and configured extra hosts): what is accepted names a non-empty lowercase
/// host with no path, user info or space, and its own rendering parses back to it.
pub fn host_header(s: &str) {
    if let Some(a) = parse_authority(s) {
        assert!(!a.host.is_empty());
        assert_eq!(a.host, a.host.to_ascii_lowercase());
        assert!(!a.host.contains(['/', '@', '?', '#', ' ']), "{a:?}");
        let shown = match (a.host.contains(':'), a.port) {
            (true, Some(p)) => format!("[{}]:{p}", a.host),
            (true, None) => format!("[{}]", a.host),
            (false, Some(p)) => format!("{}:{p}", a.host),
            (false, None) => a.host.clone(),
        };
        assert_eq!(
            parse_authority(&shown).as_ref(),
            Some(&a),
            "{s:?} shown {shown:?}"
        );
    }
}
