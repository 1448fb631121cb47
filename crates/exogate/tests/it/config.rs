//! Configuration: the shipped example parses, env overrides apply, bad values give clear errors,
//! and secrets never show in `Debug`.

use exogate::config::{Config, EXAMPLE};

#[test]
fn the_documented_example_parses() {
    let cfg = Config::from_toml(EXAMPLE).expect("example parses");
    assert_eq!(cfg.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(cfg.pending_expiry, time::Duration::hours(24));
    assert!(cfg.database_url.starts_with("sqlite://"));
    assert_eq!((cfg.tenant_concurrency, cfg.global_concurrency), (4, 64));
    assert_eq!(cfg.sweep_lease, std::time::Duration::from_secs(120));
    // The example documents the defaults of `[login]` and the session's lifetime.
    assert_eq!(cfg.login, exogate::login::LoginSettings::default());
    // And those of `[oauth]`.
    let defaults = exogate::config::OAuthSettings::default();
    assert_eq!(cfg.oauth.lifetimes, defaults.lifetimes);
    assert_eq!(
        cfg.oauth.lifetimes,
        exogate_core::oauth::Lifetimes::default()
    );
    assert_eq!(cfg.oauth.metadata_max_bytes, defaults.metadata_max_bytes);
    assert_eq!(cfg.oauth.metadata_timeout, defaults.metadata_timeout);
    assert!(!cfg.oauth.metadata_allow_loopback_http);
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exogate.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    let env = vec![
        (
            "EXOGATE_SERVER__LISTEN".to_owned(),
            "127.0.0.1:9999".to_owned(),
        ),
        (
            "EXOGATE_APPROVALS__PENDING_EXPIRY_HOURS".to_owned(),
            "2".to_owned(),
        ),
        ("UNRELATED".to_owned(), "x".to_owned()),
        // Not settings: logging, the MCP token and test switches share the prefix.
        ("EXOGATE_LOG".to_owned(), "debug".to_owned()),
        ("EXOGATE_MCP_TOKEN".to_owned(), "secret".to_owned()),
        ("EXOGATE_REQUIRE_ALL_SUITES".to_owned(), "1".to_owned()),
    ];
    let cfg = Config::load(Some(&path), &env).unwrap();
    assert_eq!(cfg.listen.to_string(), "127.0.0.1:9999");
    assert_eq!(cfg.pending_expiry, time::Duration::hours(2));
}

#[test]
fn malformed_configuration_names_the_setting() {
    let cases = [
        ("[server]\nlisten = \"nonsense\"", "server.listen"),
        ("[microsoft]\ncloud = \"mars\"", "microsoft.cloud"),
        (
            "[approvals]\npending_expiry_hours = 0",
            "approvals.pending_expiry_hours",
        ),
        ("database_url = \"mysql://x\"", "database_url"),
        (
            "[microsoft]\ntenant_concurrency = 0",
            "microsoft.tenant_concurrency",
        ),
        (
            "[microsoft]\nglobal_concurrency = 100000",
            "microsoft.global_concurrency",
        ),
        ("[inventory]\nlease_seconds = 1", "inventory.lease_seconds"),
        (
            "[login]\nfree_failures_per_user = 0",
            "login.free_failures_per_user",
        ),
        (
            "[login]\nfirst_lockout_seconds = 60\nmax_lockout_seconds = 30",
            "login.max_lockout_seconds",
        ),
        ("[login]\nhash_concurrency = 1000", "login.hash_concurrency"),
        (
            "[login]\naudited_failures_per_minute = 0",
            "login.audited_failures_per_minute",
        ),
        (
            "[server]\nsession_absolute_hours = 0",
            "server.session_absolute_hours",
        ),
        (
            "[oauth]\naccess_token_minutes = 0",
            "oauth.access_token_minutes",
        ),
        (
            "[oauth]\nmetadata_max_bytes = 10",
            "oauth.metadata_max_bytes",
        ),
    ];
    for (patch, key) in cases {
        let toml = merge_example(patch);
        let err = Config::from_toml(&toml).expect_err(patch);
        assert!(err.to_string().contains(key), "{patch}: {err}");
        assert_eq!(err.code(), "config_invalid");
    }
    let err = Config::from_toml("bogus_key = 1").expect_err("unknown key");
    assert_eq!(err.code(), "config_unreadable");
    assert!(err.to_string().contains("bogus_key"), "{err}");
}

#[test]
fn debug_never_shows_secrets() {
    let toml = EXAMPLE.replace(
        "client_secret = \"replace-me\"",
        "client_secret = \"canary-s3cr3t\"",
    );
    let cfg = Config::from_toml(&toml).unwrap();
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("canary-s3cr3t"), "{shown}");
    assert!(shown.contains("redacted"));
}

/// The example with one section's keys replaced by `patch` (a TOML snippet of one section).
fn merge_example(patch: &str) -> String {
    let table: toml::Table = EXAMPLE.parse().unwrap();
    let patch: toml::Table = patch.parse().unwrap();
    let mut merged = table;
    for (k, v) in patch {
        match (merged.get_mut(&k), v) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(new)) => {
                for (nk, nv) in new {
                    existing.insert(nk, nv);
                }
            }
            (_, v) => {
                merged.insert(k, v);
            }
        }
    }
    toml::to_string(&merged).unwrap()
}

#[test]
fn limits_and_hosts_have_defaults_and_the_older_mcp_names_still_work() {
    let cfg = Config::from_toml(EXAMPLE).unwrap();
    assert_eq!((cfg.token_per_minute, cfg.company_per_minute), (120, 240));
    assert!(cfg.allowed_hosts.is_empty() && !cfg.loopback_hosts);
    // `[mcp] rate_limit_per_minute` and `allowed_hosts` are the older names.
    let toml = merge_example(
        "[mcp]\nrate_limit_per_minute = 7\nallowed_hosts = [\"Exogate.Internal:8443\"]\n[limits]\ntoken_per_minute = 7",
    );
    let cfg = Config::from_toml(&toml).unwrap();
    assert_eq!(cfg.token_per_minute, 7);
    assert_eq!(cfg.allowed_hosts, ["exogate.internal:8443"]);
    let old_only =
        EXAMPLE.replace("token_per_minute = 120\n", "") + "[mcp]\nrate_limit_per_minute = 9\n";
    assert_eq!(Config::from_toml(&old_only).unwrap().token_per_minute, 9);
    for (patch, key) in [
        (
            "[mcp]\nrate_limit_per_minute = 5\n[limits]\ntoken_per_minute = 6",
            "limits.token_per_minute",
        ),
        ("[limits]\ntoken_per_minute = 0", "limits.token_per_minute"),
        (
            "[limits]\ncompany_per_minute = 0",
            "limits.company_per_minute",
        ),
        (
            "[server]\nallowed_hosts = [\"https://evil.example/x\"]",
            "server.allowed_hosts",
        ),
    ] {
        let err = Config::from_toml(&merge_example(patch)).expect_err(patch);
        assert!(err.to_string().contains(key), "{patch}: {err}");
        assert_eq!(err.code(), "config_invalid");
    }
}
