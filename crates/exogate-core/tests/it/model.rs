use exogate_core::*;

#[test]
fn identity_accepts_upn_smtp_guid_and_alias() {
    let cases = [
        ("bob@contoso.com", IdentityInputKind::Email),
        ("  sales@contoso.onmicrosoft.com ", IdentityInputKind::Email),
        (
            "8C1B3A4E-1111-4111-8111-111111111111",
            IdentityInputKind::Guid,
        ),
        ("sales", IdentityInputKind::Alias),
        ("Sales Team", IdentityInputKind::Alias),
        ("jean.dupont-2", IdentityInputKind::Alias),
    ];
    for (input, kind) in cases {
        let id = IdentityInput::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(id.kind(), kind, "{input:?}");
    }
    assert_eq!(
        IdentityInput::parse("8C1B3A4E-1111-4111-8111-111111111111")
            .unwrap()
            .as_str(),
        "8c1b3a4e-1111-4111-8111-111111111111"
    );
}

#[test]
fn identity_rejects_hostile_strings() {
    let long = "a".repeat(257);
    let hostile = [
        "",
        "   ",
        "*",
        "bob*",
        "b?b",
        "'bob'",
        "\"bob\"",
        "bob`",
        "bob; Remove-Mailbox x",
        "bob | x",
        "$(whoami)",
        "bob\n@x.com",
        "bob\u{0}",
        "bob\u{202E}moc",
        "bo\u{200B}b",
        "bob\u{E0041}\u{E0042}",
        "bo\u{2028}b",
        "bob\u{FE0F}",
        "sales\u{E0001}@contoso.com",
        "a@b",
        "a@@b.com",
        "@contoso.com",
        "bob @contoso.com",
        "{bob}",
        "bob&x",
        "bob\\x",
        "bob%",
        "bob‘",
        long.as_str(),
    ];
    for h in hostile {
        let err = IdentityInput::parse(h).expect_err(h);
        assert_eq!(err.code(), "invalid_input", "{h:?}");
        // The message never echoes control or invisible characters.
        assert!(
            !err.to_string().chars().any(exogate_core::text::is_hidden),
            "{h:?}"
        );
    }
    assert!(IdentityInput::parse(&"a".repeat(256)).is_ok());
}

#[test]
fn newtypes_parse_at_construction() {
    assert!(CompanyId::parse("contoso").is_ok());
    assert!(CompanyId::parse("north-wind-2").is_ok());
    for bad in ["", "Contoso", "-x", "x-", "a b", "a/b", &"a".repeat(64)] {
        assert_eq!(
            CompanyId::parse(bad).unwrap_err().code(),
            "invalid_input",
            "{bad:?}"
        );
    }
    assert!(TenantId::parse("not-a-guid").is_err());
    assert_eq!(UserName::parse("Alice").unwrap().as_str(), "alice");
    assert!(UserName::parse("al ice").is_err());
    assert_eq!(Role::parse("Manager").unwrap(), Role::Manager);
    assert!(Role::parse("root").is_err());
    assert!(
        Role::Viewer < Role::Technician
            && Role::Technician < Role::Manager
            && Role::Manager < Role::Admin
    );
    let e = Entitlement::parse("fabrikam,contoso").unwrap();
    assert_eq!(e.encode(), "contoso,fabrikam");
    assert!(e.covers(&CompanyId::parse("contoso").unwrap()));
    assert!(!e.covers(&CompanyId::parse("tailspin").unwrap()));
    assert_eq!(Entitlement::parse("*").unwrap(), Entitlement::All);
    assert!(Entitlement::parse("ok,Bad").is_err());
}

#[test]
fn exchange_states_have_badges_and_fixes() {
    for s in ExchangeAdminState::ALL {
        assert_eq!(ExchangeAdminState::parse(s.as_str()), Some(s));
        assert!(!s.badge().is_empty());
        assert_eq!(
            s.fix().is_empty(),
            s == ExchangeAdminState::Configured,
            "{s:?}"
        );
    }
    assert_eq!(ExchangeAdminState::Configured.colour(), BadgeColour::Green);
    assert_eq!(ExchangeAdminState::RoleMissing.badge(), "Role missing");
    let failed = StatusRecord {
        state: ExchangeAdminState::CheckFailed,
        checked_at: Timestamp::from_unix_secs(10),
        last_good_at: Some(Timestamp::from_unix_secs(5)),
        last_good_state: Some(ExchangeAdminState::Configured),
        detail: "429".into(),
    };
    assert_eq!(failed.shown_state(), ExchangeAdminState::Configured);
    assert!(failed.check_failed());
}

#[test]
fn secrets_are_redacted_and_tokens_hashed() {
    let h = PasswordHash::new("$argon2id$v=19$secret".into());
    assert!(!format!("{h:?}").contains("secret"));
    let hash = hash_token_secret("s3cr3t");
    assert_eq!(hash.len(), 64);
    assert_ne!(hash, "s3cr3t");
    assert_eq!(hash, hash_token_secret("s3cr3t"));
}

#[test]
fn error_codes_are_stable_and_listed() {
    let errs = [
        CoreError::not_found(Entity::Company, "x"),
        CoreError::forbidden(Denial::RoleTooLow {
            needed: Role::Manager,
        }),
        CoreError::invalid("f", "r".into()),
        CoreError::conflict(ConflictReason::DigestMismatch),
        CoreError::NotConfigured {
            state: ExchangeAdminState::RoleMissing,
        },
        CoreError::Unavailable { what: "db".into() },
        CoreError::internal("boom"),
    ];
    let codes: Vec<_> = errs.iter().map(CoreError::code).collect();
    assert_eq!(
        codes,
        [
            "company_not_found",
            "role_too_low",
            "invalid_input",
            "digest_mismatch",
            "exchange_role_missing",
            "unavailable",
            "internal"
        ]
    );
    for c in codes {
        assert!(CoreError::ALL_CODES.contains(&c), "{c}");
    }
    assert_eq!(errs[0].to_string(), "company `x` not found");
}

#[test]
fn timestamps_round_trip() {
    let t = Timestamp::from_unix_millis(1_800_000_000_123);
    assert_eq!(Timestamp::from_offset_date_time(t.to_offset_date_time()), t);
    assert_eq!(t.plus_secs(1).unix_millis(), 1_800_000_001_123);
    assert_eq!(t.to_string(), "2027-01-15T08:00:00.123Z");
}

#[test]
fn every_error_code_is_listed_once() {
    let mut errs = vec![
        CoreError::invalid("f", "r".into()),
        CoreError::Unavailable { what: "db".into() },
        CoreError::internal("boom"),
    ];
    for e in [
        Entity::Company,
        Entity::Connection,
        Entity::Request,
        Entity::User,
        Entity::ApiToken,
        Entity::Mailbox,
        Entity::Trustee,
        Entity::Session,
        Entity::ConsentState,
        // (notify)
        Entity::Webhook,
        // (reviews)
        Entity::Review,
        Entity::ReviewLink,
    ] {
        errs.push(CoreError::not_found(e, "x"));
    }
    for d in [
        Denial::UserDisabled,
        Denial::NotEntitled,
        Denial::RoleTooLow {
            needed: Role::Admin,
        },
        Denial::OwnRequest,
        Denial::DecisionViaMcp,
        Denial::TokenRevoked,
        Denial::NotRequester,
    ] {
        errs.push(CoreError::forbidden(d));
    }
    for c in [
        ConflictReason::AlreadyDecided { state: "approved" },
        ConflictReason::Expired,
        ConflictReason::AlreadyExists,
        ConflictReason::NotConnected,
        ConflictReason::DigestMismatch,
        ConflictReason::LeaseLost,
        ConflictReason::Ambiguous { candidates: 2 },
        ConflictReason::NotRevertible,
        ConflictReason::BadTransition { from: "a", to: "b" },
        ConflictReason::Rejected {
            message: "m".into(),
        },
        ConflictReason::TooManyPending { limit: 1 },
        ConflictReason::TenantLinked,
        ConflictReason::AlreadyInState { what: "w".into() },
        ConflictReason::AmbiguousCompany {
            candidates: vec!["a (A)".into(), "b (a)".into()],
        },
        ConflictReason::NotSweptYet {
            company: "Contoso".into(),
            id: "contoso".into(),
        },
        // (cli-requests)
        ConflictReason::AmbiguousRequest {
            prefix: "0190aaaa".into(),
        },
        // (hardening)
        ConflictReason::TargetNotAllowed {
            host: "127.0.0.1".into(),
            kind: "a loopback address (this machine)",
        },
        // (reviews)
        ConflictReason::ReviewClosed,
    ] {
        errs.push(CoreError::conflict(c));
    }
    for s in ExchangeAdminState::ALL {
        errs.push(CoreError::NotConfigured { state: s });
    }
    let mut codes: Vec<&str> = errs.iter().map(CoreError::code).collect();
    for c in &codes {
        assert!(
            CoreError::ALL_CODES.contains(c),
            "{c} missing from ALL_CODES"
        );
        assert!(
            c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{c}"
        );
    }
    codes.sort_unstable();
    codes.dedup();
    let mut all = CoreError::ALL_CODES.to_vec();
    all.sort_unstable();
    assert_eq!(codes, all);
    // Messages are lowercase-led and never end with a period.
    for e in &errs {
        let m = e.to_string();
        assert!(!m.ends_with('.'), "{m}");
    }
}

/// (inventory-truth) A not-found looked for in one company is worded for a person, with the
/// same stable codes as any not-found, and caps what was typed.
#[test]
fn not_found_in_a_company_reads_as_a_sentence() {
    let e = CoreError::not_found_in(Entity::Mailbox, " suport ", "Contoso");
    assert_eq!(e.to_string(), "mailbox 'suport' not found in Contoso");
    assert_eq!(e.code(), "mailbox_not_found");
    let e = CoreError::not_found_in(Entity::User, &"x".repeat(500), "Contoso");
    assert_eq!(e.code(), "user_not_found");
    assert!(e.to_string().chars().count() < 130, "{e}");
}

/// (inventory-truth) The inventory's directory records every name a person may type for a
/// listed recipient: names, alias, proxy addresses without `smtp:`, local part, display name.
#[test]
fn directory_names_cover_alias_proxy_addresses_and_display_name() {
    use exogate_core::inventory::directory_names;
    use exogate_core::ports::DirectoryEntry;
    let e = DirectoryEntry {
        identity: ResolvedIdentity {
            object_id: "oid-1".into(),
            primary_address: "support@c.com".into(),
            display_name: "Support Desk".into(),
            kind: RecipientKind::SharedMailbox,
        },
        names: vec!["Support".into(), "support@c.com".into()],
        weak_names: vec![
            "helpdesk".into(),
            "SMTP:Support@c.com".into(),
            "smtp:help@old.c.com".into(),
            "x500:/o=ex".into(),
        ],
    };
    let mut names: Vec<String> = directory_names(&e).into_iter().map(|n| n.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "help@old.c.com",
            "helpdesk",
            "oid-1",
            "support",
            "support desk",
            "support@c.com",
            "x500:/o=ex"
        ]
    );
}
