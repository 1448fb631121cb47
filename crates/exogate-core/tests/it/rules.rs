//! Rules the pages, the JSON API and the CLI share: who may verify the audit chain, a decision
//! bound to the reviewed digest, a mailbox hidden from the address lists, and what offboarding
//! removes or keeps.

use exogate_core::action::Permission;
use exogate_core::inventory::{InventoryRow, InventoryTrustee, TrusteeClass};
use exogate_core::ops::audit::may_verify;
use exogate_core::ops::inventory::{held_via, offboard_lists, offboard_removes};
use exogate_core::ops::reads::hidden_from_address_lists;
use exogate_core::ops::requests::{ReviewAgain, check_reviewed};
use exogate_core::ports::MailboxDetails;
use exogate_core::*;

use crate::support::*;

#[test]
fn managers_and_admins_may_verify_the_audit_chain_technicians_and_viewers_not() {
    for role in [Role::Manager, Role::Admin] {
        assert_eq!(may_verify(&user("m", role, &["*"])), Ok(()), "{role:?}");
    }
    for role in [Role::Viewer, Role::Technician] {
        assert_eq!(
            may_verify(&user("t", role, &["*"])),
            Err(Denial::RoleTooLow {
                needed: Role::Manager
            }),
            "{role:?}"
        );
    }
}

#[test]
fn a_decision_binds_to_the_digest_that_was_reviewed() {
    let r = request_for("acme", &user("alice", Role::Technician, &["acme"]));
    assert_eq!(check_reviewed(&r, &r.digest), Ok(()));
    assert_eq!(check_reviewed(&r, &format!("  {}\n", r.digest)), Ok(()));
    assert_eq!(check_reviewed(&r, ""), Err(ReviewAgain));
    let other = request_for("globex", &user("alice", Role::Technician, &["globex"]));
    assert_ne!(other.digest, r.digest);
    assert_eq!(check_reviewed(&r, &other.digest), Err(ReviewAgain));
}

#[test]
fn hidden_from_the_address_lists_reads_the_hidden_property() {
    let details = |props: &[(&str, &str)]| MailboxDetails {
        mailbox: ident("sales", 1),
        email_addresses: Vec::new(),
        send_on_behalf: Vec::new(),
        properties: props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    assert!(hidden_from_address_lists(&details(&[(
        "HiddenFromAddressListsEnabled",
        " True "
    )])));
    assert!(!hidden_from_address_lists(&details(&[(
        "HiddenFromAddressListsEnabled",
        "False"
    )])));
    assert!(!hidden_from_address_lists(&details(&[("Alias", "true")])));
    assert!(!hidden_from_address_lists(&details(&[])));
}

fn row(mailbox: u32, class: TrusteeClass, trustee: Option<ResolvedIdentity>) -> InventoryRow {
    InventoryRow {
        company: cid("acme"),
        mailbox: ident("box", mailbox),
        trustee: InventoryTrustee {
            raw: trustee
                .as_ref()
                .map_or("S-1-5-21-1-2-3-500".to_owned(), |i| i.object_id.clone()),
            sid: None,
            class,
            identity: trustee,
        },
        right: Permission::FullAccess,
    }
}

#[test]
fn offboarding_removes_direct_rights_and_keeps_what_groups_grant() {
    let bob = ident("bob", 2);
    let direct = row(1, TrusteeClass::User, Some(bob.clone()));
    let own = row(2, TrusteeClass::User, Some(bob.clone()));
    let group = row(3, TrusteeClass::Group, Some(ident("sales-team", 9)));
    let orphan = row(4, TrusteeClass::Orphan, None);
    let rows = vec![direct.clone(), own.clone(), group.clone(), orphan.clone()];
    assert!(offboard_removes(&direct));
    assert!(!offboard_removes(&own), "their own mailbox stays");
    assert!(!offboard_removes(&group));
    assert!(!offboard_removes(&orphan));
    let lists = offboard_lists(&rows);
    assert_eq!(lists.removable, vec![&direct]);
    assert_eq!(lists.through_groups, vec![&group]);
}

#[test]
fn a_right_is_held_directly_through_a_group_or_by_an_orphaned_sid() {
    assert_eq!(held_via(TrusteeClass::User), "direct");
    assert_eq!(held_via(TrusteeClass::Unresolved), "direct");
    assert_eq!(held_via(TrusteeClass::Group), "group");
    assert_eq!(held_via(TrusteeClass::Orphan), "orphan");
}

#[test]
fn the_exchange_admin_badge_is_green_amber_red_or_grey_without_a_state() {
    use exogate_core::ops::companies::badge_colour;
    assert_eq!(badge_colour(Some(ExchangeAdminState::Configured)), "green");
    assert_eq!(badge_colour(Some(ExchangeAdminState::Propagating)), "amber");
    assert_eq!(badge_colour(Some(ExchangeAdminState::CheckFailed)), "amber");
    assert_eq!(badge_colour(Some(ExchangeAdminState::RoleMissing)), "red");
    assert_eq!(badge_colour(None), "grey");
}

#[test]
fn a_permission_trustee_is_a_user_a_group_an_orphaned_sid_or_unresolved() {
    use exogate_core::ops::reads::trustee_class;
    use exogate_core::ports::PermissionEntry;
    let entry = |trustee: &str, resolved: Option<ResolvedIdentity>| PermissionEntry {
        trustee: trustee.to_owned(),
        resolved,
        access_rights: vec!["FullAccess".to_owned()],
        inherited: false,
        deny: false,
    };
    let group = ResolvedIdentity {
        kind: RecipientKind::Group,
        ..ident("sales-team", 9)
    };
    assert_eq!(
        trustee_class(&entry("bob", Some(ident("bob", 2)))),
        TrusteeClass::User
    );
    assert_eq!(
        trustee_class(&entry("Sales Team", Some(group))),
        TrusteeClass::Group
    );
    assert_eq!(
        trustee_class(&entry("S-1-5-21-1-2-3-1104", None)),
        TrusteeClass::Orphan
    );
    assert_eq!(
        trustee_class(&entry("NT AUTHORITY\\SELF", None)),
        TrusteeClass::Unresolved
    );
}
