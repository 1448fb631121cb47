use exogate_core::Timestamp;
use exogate_core::audit::*;

fn chain(n: usize) -> Vec<AuditEvent> {
    let mut out: Vec<AuditEvent> = Vec::new();
    for i in 0..n {
        let ev = NewAuditEvent::system(
            Timestamp::from_unix_secs(i as i64),
            AuditKind::StatusChecked,
        )
        .detail(serde_json::json!({ "i": i }));
        let head = out.last().map(|e| (e.seq, e.hash.as_str()));
        out.push(next_event(head, ev));
    }
    out
}

fn head(events: &[AuditEvent]) -> Option<(i64, &str)> {
    events.last().map(|e| (e.seq, e.hash.as_str()))
}

#[test]
fn intact_chain_verifies() {
    let c = chain(10);
    let r = verify(&c, head(&c)).unwrap();
    assert_eq!((r.events, r.last_seq), (10, 10));
    assert_eq!(c[0].prev_hash, GENESIS_HASH);
    assert!(verify(&[], None).is_ok());
}

#[test]
fn detects_modification() {
    let c = chain(10);
    let h = head(&c).map(|(s, h)| (s, h.to_owned()));
    let mut m = c.clone();
    m[4].event.detail = r#"{"i":99}"#.into();
    assert_eq!(
        verify(&m, h.as_ref().map(|(s, h)| (*s, h.as_str()))).unwrap_err(),
        ChainBreak {
            seq: 5,
            kind: BreakKind::HashMismatch
        }
    );
    let mut m = c.clone();
    m[2].event.actor_name = Some("mallory".into());
    assert_eq!(verify(&m, None).unwrap_err().seq, 3);
}

#[test]
fn detects_deletion() {
    let c = chain(10);
    let mut m = c.clone();
    m.remove(3);
    assert_eq!(
        verify(&m, head(&c)).unwrap_err(),
        ChainBreak {
            seq: 5,
            kind: BreakKind::SeqGap { expected: 4 }
        }
    );
    // Deleting the tail is caught by the head.
    let mut m = c.clone();
    m.truncate(7);
    assert_eq!(
        verify(&m, head(&c)).unwrap_err(),
        ChainBreak {
            seq: 7,
            kind: BreakKind::Truncated { head_seq: 10 }
        }
    );
    // Deleting a row and renumbering the rest breaks the link.
    let mut m = c.clone();
    m.remove(3);
    for e in m.iter_mut().skip(3) {
        e.seq -= 1;
    }
    assert_eq!(verify(&m, None).unwrap_err().seq, 4);
}

#[test]
fn detects_insertion() {
    let c = chain(10);
    let mut m = c.clone();
    let forged = next_event(
        Some((m[4].seq, &m[4].hash)),
        NewAuditEvent::system(Timestamp::from_unix_secs(4), AuditKind::Login),
    );
    m.insert(5, forged);
    for e in m.iter_mut().skip(6) {
        e.seq += 1;
    }
    let err = verify(&m, head(&c)).unwrap_err();
    assert_eq!(err.seq, 7, "{err}");
}

#[test]
fn detects_reordering() {
    let c = chain(10);
    let mut m = c.clone();
    m.swap(2, 6);
    assert_eq!(verify(&m, head(&c)).unwrap_err().seq, 7);
    // Swapping contents but keeping seq numbers in order.
    let mut m = c.clone();
    let (a, b) = (m[2].event.clone(), m[3].event.clone());
    m[2].event = b;
    m[3].event = a;
    assert_eq!(
        verify(&m, head(&c)).unwrap_err(),
        ChainBreak {
            seq: 3,
            kind: BreakKind::HashMismatch
        }
    );
}
