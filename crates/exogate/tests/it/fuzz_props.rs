//! The fuzz targets' properties (`exogate::fuzz_checks`, also run by `fuzz/` on nightly),
//! checked here with proptest on every CI run.

use exogate::fuzz_checks::{
    config_text, csv_export_cell, host_header, mcp_arguments, read_csv_cell,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,60}",
        "[=+@\t\r -]{0,3}[a-z0-9,\"\n\r ()!]{0,20}",
        "[a-z]{1,10}@[a-z]{1,10}\\.com",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ]
}

/// TOML shaped like the configuration: known sections and keys with values of any type.
fn toml_text() -> impl Strategy<Value = String> {
    let section = prop_oneof![
        Just("server"),
        Just("database"),
        Just("worker"),
        Just("audit"),
        Just("login"),
        Just("inventory"),
        Just("approvals"),
        Just("status"),
        Just("oauth"),
        Just("microsoft"),
        Just("limits"),
        Just("exchange_app"),
        Just("connect_app"),
        Just("bogus"),
    ];
    let key = prop_oneof![
        proptest::sample::select(vec![
            "listen",
            "public_url",
            "url",
            "cloud",
            "client_id",
            "client_secret",
            "allowed_hosts",
            "pending_expiry_hours",
            "lease_secs",
            "max_connections",
            "login_url",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,12}",
    ];
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,30}".prop_map(|s| format!("{s:?}")),
        Just("[\"a\", 1]".to_owned()),
        Just("true".to_owned()),
        Just("{ x = 1 }".to_owned()),
        Just("1e400".to_owned()),
        Just("\"0.0.0.0:99999\"".to_owned()),
        Just("\"http://[::1\"".to_owned()),
    ];
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            (section, proptest::collection::vec((key, value), 0..4)),
            0..4
        )
        .prop_map(|secs| {
            secs.into_iter()
                .map(|(s, kv)| {
                    let body: String = kv
                        .into_iter()
                        .map(|(k, v)| format!("{k} = {v}\n"))
                        .collect();
                    format!("[{s}]\n{body}")
                })
                .collect()
        }),
    ]
}

/// JSON objects shaped like tool arguments: the tools' field names with values of any type.
fn arguments() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("company".to_owned()),
        Just("mailbox".to_owned()),
        Just("trustee".to_owned()),
        Just("automapping".to_owned()),
        Just("request_id".to_owned()),
        Just("user".to_owned()),
        "[a-z_]{1,10}",
    ];
    let value = prop_oneof![
        text().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        Just(serde_json::json!(["contoso"])),
    ];
    prop_oneof![
        any::<Vec<u8>>(),
        proptest::collection::vec((key, value), 0..5).prop_map(|kv| {
            serde_json::to_vec(&serde_json::Value::Object(kv.into_iter().collect())).unwrap()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_cells_are_well_formed_and_never_formulas(s in text()) {
        csv_export_cell(&s);
    }

    #[test]
    fn mcp_arguments_are_read_exactly_or_refused(b in arguments()) {
        mcp_arguments(&b);
    }

    #[test]
    fn host_headers_keep_their_properties(s in prop_oneof![
        text(),
        "\\[?[a-zA-Z0-9:.]{0,20}\\]?(:[0-9]{0,6})?",
    ]) {
        host_header(&s);
    }
}

proptest! {
    // Each case parses and validates a configuration twice: fewer cases.
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn configuration_text_is_a_config_or_a_clean_error(t in toml_text()) {
        config_text(&t);
    }
}

#[test]
fn csv_reader_of_the_checks_refuses_broken_cells() {
    // The property above is only as good as this reader: it must refuse what is not one cell.
    assert_eq!(read_csv_cell("a,b"), None);
    assert_eq!(read_csv_cell("\"a\"b\""), None);
    assert_eq!(read_csv_cell("\"a"), None);
    assert_eq!(read_csv_cell("a\nb"), None);
    assert_eq!(read_csv_cell("\"a\"\"b\"").as_deref(), Some("a\"b"));
    assert_eq!(read_csv_cell("'=1").as_deref(), Some("'=1"));
}

#[test]
fn edge_inputs_keep_the_properties() {
    for s in [
        "",
        "=",
        "-1",
        "@x",
        "\t=1",
        "\r\n",
        "\"",
        " =1 ",
        "a\"b",
        "=cmd|' /C calc'!A0",
    ] {
        csv_export_cell(s);
    }
    for h in [
        "",
        "[",
        "[]",
        "[::1]:",
        ":80",
        "a.",
        "A.B:65535",
        "[::ffff:127.0.0.1]",
        "x:65536",
    ] {
        host_header(h);
    }
    for b in [
        &b"{}"[..],
        b"[]",
        b"null",
        b"{\"company\":\"a\",\"company\":\"b\"}",
        b"{\"user\":\"a\",\"company\":null}",
    ] {
        mcp_arguments(b);
    }
    for t in [
        "",
        "[server]\nlisten = 1",
        "[[server]]",
        "client_secret = 1",
    ] {
        config_text(t);
    }
}

/// Found by proptest on this harness: `host..:12` was accepted as the host `host.`, whose own
/// rendering then named another host (`host`). A name ending in an empty label is no host.
#[test]
fn a_host_with_an_empty_last_label_is_refused() {
    use exogate::edge::parse_authority;
    assert_eq!(parse_authority("d..:12"), None);
    assert_eq!(parse_authority(".."), None);
    assert_eq!(
        parse_authority("example.com.").map(|a| a.host),
        Some("example.com".to_owned())
    );
    host_header("EOKD..:12");
}

/// Found by the `host_header` fuzz target: `))[]` was taken as the host `))[` (the brackets of
/// an IPv6 literal were trimmed one side at a time), `[%]` as the host `%`. Brackets come off
/// only as a pair, around an IPv6 address.
#[test]
fn brackets_come_off_a_host_only_as_a_pair() {
    use exogate::edge::parse_authority;
    assert_eq!(parse_authority("))[]"), None);
    assert_eq!(parse_authority("a]"), None);
    // And what the brackets hold is an IPv6 address (`[%]` was taken as the host `%`).
    assert_eq!(parse_authority("[%]"), None);
    assert_eq!(parse_authority("[example.com]:80"), None);
    host_header("[%]");
    assert_eq!(
        parse_authority("[::1]:8080").map(|a| (a.host, a.port)),
        Some(("::1".to_owned(), Some(8080)))
    );
    host_header("))[]");
}
