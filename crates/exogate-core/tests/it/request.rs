use exogate_core::request::RequestState::{self, *};

#[test]
fn state_machine_table() {
    let allowed: &[(RequestState, &[RequestState])] = &[
        (Pending, &[Approved, Rejected, Expired, Cancelled]),
        (Approved, &[Executing, Cancelled]),
        (
            Executing,
            &[Succeeded, AlreadyInState, Failed, Approved, Executing],
        ),
        (Succeeded, &[]),
        (AlreadyInState, &[]),
        (Failed, &[]),
        (Rejected, &[]),
        (Expired, &[]),
        (Cancelled, &[]),
    ];
    let mut checked = 0;
    for (from, tos) in allowed {
        for to in RequestState::ALL {
            assert_eq!(from.can_become(to), tos.contains(&to), "{from:?} -> {to:?}");
            checked += 1;
        }
        assert_eq!(from.is_terminal(), tos.is_empty(), "{from:?}");
        assert_eq!(RequestState::parse(from.as_str()), Some(*from));
    }
    assert_eq!(checked, 81);
}
