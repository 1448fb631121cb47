//! `search_audit`: the filters run in SQL before the limit, and keyset paging by `seq` finds
//! every match exactly once.

use exogate_core::audit::{AuditFilter, AuditKind, NewAuditEvent};
use exogate_core::ports::Store;
use exogate_core::*;

use crate::support::*;

both! {
    async fn filters_run_before_the_limit_and_pages_follow_seq(db: Db) {
        let s: &dyn Store = &db;
        let c = CompanyId::parse("contoso").unwrap();
        let other = CompanyId::parse("fabrikam").unwrap();
        let day = |d: i64| Timestamp::from_unix_millis(1_796_083_200_000 + d * 86_400_000); // 2026-12-01
        let r = RequestId::from_uuid(uuid::Uuid::now_v7());
        // The one match is the oldest event; 1,100 newer events do not match.
        let first = s.append_audit(NewAuditEvent::new(day(0), AuditKind::RequestApproved, None).company(&c).request(r)).await.unwrap();
        for i in 0..1100 {
            let company = if i % 2 == 0 { &c } else { &other };
            s.append_audit(NewAuditEvent::new(day(1), AuditKind::ReadTool, None).company(company)).await.unwrap();
        }
        let found = s.search_audit(&AuditFilter { company: Some(c.clone()), kind: Some("request.approved".into()), limit: 5, ..AuditFilter::default() }).await.unwrap();
        assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), [first.seq]);
        let by_request = s.search_audit(&AuditFilter { request: Some(r), limit: 1, ..AuditFilter::default() }).await.unwrap();
        assert_eq!(by_request.len(), 1);
        // Time bounds are inclusive.
        let f = |since: Option<Timestamp>, until: Option<Timestamp>| AuditFilter { company: Some(c.clone()), since, until, limit: 1000, ..AuditFilter::default() };
        assert_eq!(s.search_audit(&f(None, Some(day(0)))).await.unwrap().len(), 1);
        assert_eq!(s.search_audit(&f(Some(day(1)), None)).await.unwrap().len(), 550);
        // Keyset paging: newest first, each page below the last seq seen, nothing twice.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = s.search_audit(&AuditFilter { company: Some(c.clone()), kind: Some("tool.read".into()), before_seq: before, limit: 200, ..AuditFilter::default() }).await.unwrap();
            let Some(last) = page.last() else { break };
            before = Some(last.seq);
            seen.extend(page.iter().map(|e| e.seq));
        }
        assert_eq!(seen.len(), 550);
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
    }
}
