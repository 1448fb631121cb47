use exogate_core::tools::*;

#[test]
fn catalogue_matches_design() {
    let c = catalogue();
    assert_eq!(c.len(), 14);
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
    assert!(spec(ToolName::RemoveSendAs).destructive);
    // (drift) A low-risk read of exogate's own records.
    let drift = spec(ToolName::ListDriftFindings);
    assert_eq!(
        (drift.risk, drift.read_only, drift.open_world),
        (RiskLevel::Low, true, false)
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
