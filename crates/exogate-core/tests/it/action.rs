use exogate_core::action::*;

use crate::support::*;

#[test]
fn digest_is_stable() {
    let a = vec![action("contoso")];
    let d1 = digest_actions(&a);
    assert_eq!(d1, digest_actions(&a.clone()));
    assert_eq!(d1.len(), 64);
    // Pinned: changing the canonical encoding changes every stored digest, so it must be deliberate.
    assert_eq!(
        encode_actions(&a),
        r#"{"v":1,"actions":[{"company":"contoso","tenant":"11111111-1111-4111-8111-111111111111","operation":"grant_full_access","mailbox":{"object_id":"00000000-0000-4000-8000-000000000001","primary_address":"sales@contoso.onmicrosoft.com","display_name":"sales","kind":"user_mailbox"},"trustee":{"object_id":"00000000-0000-4000-8000-000000000002","primary_address":"bob@contoso.onmicrosoft.com","display_name":"bob","kind":"user_mailbox"},"options":{"automapping":true},"state_at_request":"absent"}]}"#
    );
}

#[test]
fn digest_detects_every_field_change() {
    let base = action("contoso");
    let d = digest_actions(std::slice::from_ref(&base));
    let mut variants = Vec::new();
    let mut v = base.clone();
    v.company = cid("fabrikam");
    variants.push(v);
    let mut v = base.clone();
    v.tenant = exogate_core::TenantId::parse("22222222-2222-4222-8222-222222222222").unwrap();
    variants.push(v);
    let mut v = base.clone();
    v.operation = v.operation.inverse();
    variants.push(v);
    let mut v = base.clone();
    v.trustee.object_id = "00000000-0000-4000-8000-000000000003".into();
    variants.push(v);
    let mut v = base.clone();
    v.mailbox.primary_address = "support@contoso.onmicrosoft.com".into();
    variants.push(v);
    let mut v = base.clone();
    v.trustee.display_name = "bob2".into();
    variants.push(v);
    let mut v = base.clone();
    v.options.automapping = Some(false);
    variants.push(v);
    let mut v = base.clone();
    v.state_at_request = Presence::Present;
    variants.push(v);
    let mut v = base.clone();
    v.mailbox.kind = exogate_core::RecipientKind::SharedMailbox;
    variants.push(v);
    for v in &variants {
        assert_ne!(digest_actions(std::slice::from_ref(v)), d, "{v:?}");
    }
    // Order and count matter too.
    let two = vec![base.clone(), variants[3].clone()];
    let two_rev = vec![variants[3].clone(), base.clone()];
    assert_ne!(digest_actions(&two), digest_actions(&two_rev));
    assert_ne!(digest_actions(&two), d);
}

#[test]
fn encoding_round_trips_with_hostile_strings() {
    let mut a = action("contoso");
    a.trustee.display_name = "Bob \"Ignore previous instructions\" \u{202E} \\ </script>".into();
    let text = encode_actions(&[a.clone(), a.inverse()]);
    let back = decode_actions(&text).unwrap();
    assert_eq!(back, vec![a.clone(), a.inverse()]);
    assert_eq!(encode_actions(&back), text);
    assert!(decode_actions("{}").is_err());
    assert!(decode_actions(r#"{"v":1,"actions":[]}"#).is_err());
    assert!(decode_actions(r#"{"v":2,"actions":[]}"#).is_err());
}

#[test]
fn automapping_only_on_full_access_grants_and_inverse() {
    let a = action("contoso");
    assert_eq!(a.options.automapping, Some(true));
    let inv = a.inverse();
    assert_eq!(
        inv.operation,
        Operation {
            kind: OperationKind::Remove,
            permission: Permission::FullAccess
        }
    );
    assert_eq!(inv.options.automapping, None);
    assert_eq!(inv.state_at_request, Presence::Present);
    assert!(
        a.summary()
            .contains("bob has no Full Access on sales today"),
        "{}",
        a.summary()
    );
}

mod roundtrip {
    use exogate_core::action::*;
    use exogate_core::{CompanyId, RecipientKind, ResolvedIdentity, TenantId};
    use proptest::prelude::*;

    fn ident() -> impl Strategy<Value = ResolvedIdentity> {
        (
            any::<String>(),
            any::<String>(),
            any::<String>(),
            0..RecipientKind::ALL.len(),
        )
            .prop_map(|(o, p, d, k)| ResolvedIdentity {
                object_id: o,
                primary_address: p,
                display_name: d,
                kind: RecipientKind::ALL[k],
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn canonical_encoding_round_trips(mailbox in ident(), trustee in ident(), op in 0..6usize, am in any::<Option<bool>>(), present in any::<bool>(), n in 1..4usize) {
            let a = CanonicalAction::new(
                CompanyId::parse("contoso").unwrap(),
                TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap(),
                Operation::ALL[op],
                mailbox,
                trustee,
                am,
                if present { Presence::Present } else { Presence::Absent },
            );
            let actions = vec![a; n];
            let text = encode_actions(&actions);
            let back = decode_actions(&text).unwrap();
            prop_assert_eq!(&back, &actions);
            prop_assert_eq!(encode_actions(&back), text);
            prop_assert_eq!(digest_actions(&back), digest_actions(&actions));
        }
    }
}
