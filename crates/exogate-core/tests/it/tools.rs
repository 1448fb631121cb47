use exogate_core::tools::*;

#[test]
fn catalogue_matches_design() {
    let c = catalogue(&ToolSettings::default());
    assert_eq!(c.len(), 12);
    for s in &c {
        assert_eq!(ToolName::parse(s.name.as_str()), Some(s.name));
        if s.name.is_write() {
            assert_eq!(
                (s.risk, s.approval),
                (RiskLevel::High, ApprovalMode::Always),
                "{:?}",
                s.name
            );
            assert!(!s.read_only);
        } else {
            assert_eq!(
                (s.risk, s.approval),
                (RiskLevel::Low, ApprovalMode::None),
                "{:?}",
                s.name
            );
            assert!(s.read_only);
        }
    }
    assert!(spec(ToolName::RemoveSendAs, &ToolSettings::default()).destructive);
}

#[test]
fn writes_are_forced_to_always_whatever_the_configuration_says() {
    let mut settings = ToolSettings::default();
    for t in ToolName::ALL {
        settings.approval.insert(t, ApprovalMode::None);
        settings.risk.insert(t, RiskLevel::Low);
    }
    for s in catalogue(&settings) {
        if s.name.is_write() {
            assert_eq!(s.approval, ApprovalMode::Always, "{:?}", s.name);
            assert!(s.risk >= RiskLevel::Medium, "{:?}", s.name);
        } else {
            assert_eq!(s.approval, ApprovalMode::None);
            assert_eq!(s.risk, RiskLevel::Low);
        }
    }
    // A read tool may be configured to need approval.
    settings
        .approval
        .insert(ToolName::ViewMailboxDetails, ApprovalMode::Always);
    assert_eq!(
        spec(ToolName::ViewMailboxDetails, &settings).approval,
        ApprovalMode::Always
    );
}

#[test]
fn write_tools_map_to_operations_and_back() {
    for t in ToolName::ALL {
        if let Some(op) = t.operation() {
            assert_eq!(ToolName::for_operation(op), t);
            assert_eq!(op.as_str(), t.as_str());
            assert_eq!(op.inverse().inverse(), op);
        }
    }
}
