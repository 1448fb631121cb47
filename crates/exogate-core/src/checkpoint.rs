//! Signed audit checkpoints: a statement "the audit chain's event `seq` had hash `head` at `at`",
//! signed with a key kept outside the database. Someone who can rewrite the whole `audit_log`
//! table can recompute every hash and the head, so the chain then verifies; they cannot sign, so
//! a rewritten chain contradicts the checkpoints written before the rewrite.
//!
//! This module defines what is signed ([`Checkpoint::signed_bytes`]), the key id, and the rule
//! that compares a chain with a list of checkpoints ([`CheckpointMatcher`]). Signing, keys and
//! files live at the edge.
//!
//! The signed bytes, all integers big-endian and every string preceded by its length as a
//! `u64`:
//!
//! ```text
//! len ‖ "exogate-audit-checkpoint-v1" ‖ seq (i64) ‖ len ‖ head (lowercase hex) ‖
//! at (i64, milliseconds since the Unix epoch) ‖ len ‖ key_id
//! ```

use std::fmt;

use sha2::{Digest, Sha256};

use crate::audit::AuditEvent;
use crate::model::Timestamp;

const DOMAIN: &[u8] = b"exogate-audit-checkpoint-v1";

/// One checkpoint, before or after signing (the signature travels beside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The chain's newest event when the checkpoint was taken.
    pub seq: i64,
    /// That event's `hash`.
    pub head: String,
    /// When the checkpoint was taken.
    pub at: Timestamp,
    /// Which key signs it: see [`key_id`].
    pub key_id: String,
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u64).to_be_bytes());
    out.extend_from_slice(field);
}

impl Checkpoint {
    /// The exact bytes that are signed (see the module documentation).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        put(&mut out, DOMAIN);
        out.extend_from_slice(&self.seq.to_be_bytes());
        put(&mut out, self.head.as_bytes());
        out.extend_from_slice(&self.at.unix_millis().to_be_bytes());
        put(&mut out, self.key_id.as_bytes());
        out
    }
}

/// A key's id: the first 16 hex digits of the SHA-256 of its raw public key.
pub fn key_id(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(&digest[..8])
}

/// How the chain contradicts a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contradiction {
    /// The event at the checkpoint's `seq` has another hash.
    HashDiffers { found: String },
    /// The chain ends before the checkpoint's `seq`.
    Missing { last_seq: i64 },
}

/// The first checkpoint the chain contradicts, by its position in the list given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradicted {
    pub index: usize,
    pub checkpoint: Checkpoint,
    pub problem: Contradiction,
}

impl fmt::Display for Contradicted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.checkpoint;
        match &self.problem {
            Contradiction::HashDiffers { found } => write!(
                f,
                "checkpoint of event {} taken at {} records hash {} but the chain has {found} there (the chain was rewritten)",
                c.seq, c.at, c.head
            ),
            Contradiction::Missing { last_seq } => write!(
                f,
                "checkpoint of event {} taken at {} records an event the chain no longer has (it ends at {last_seq})",
                c.seq, c.at
            ),
        }
    }
}

/// Compares a chain, fed in `seq` order, with checkpoints. The first contradiction is the one
/// with the lowest `seq` (ties: the earliest in the list).
#[derive(Clone, Debug)]
pub struct CheckpointMatcher {
    /// Indexes into `checkpoints`, by `seq` then position.
    order: Vec<usize>,
    checkpoints: Vec<Checkpoint>,
    next: usize,
    last_seq: i64,
}

impl CheckpointMatcher {
    pub fn new(checkpoints: Vec<Checkpoint>) -> Self {
        let mut order: Vec<usize> = (0..checkpoints.len()).collect();
        order.sort_by_key(|&i| (checkpoints[i].seq, i));
        Self {
            order,
            checkpoints,
            next: 0,
            last_seq: 0,
        }
    }

    fn contradicted(&self, index: usize, problem: Contradiction) -> Contradicted {
        Contradicted {
            index,
            checkpoint: self.checkpoints[index].clone(),
            problem,
        }
    }

    /// Feeds the next event of the chain.
    pub fn push(&mut self, e: &AuditEvent) -> Result<(), Contradicted> {
        let before = self.last_seq;
        self.last_seq = e.seq;
        while let Some(&i) = self.order.get(self.next) {
            let c = &self.checkpoints[i];
            if c.seq > e.seq {
                break;
            }
            // A checkpoint below this event whose event never came (a gap) is missing.
            if c.seq < e.seq {
                return Err(self.contradicted(i, Contradiction::Missing { last_seq: before }));
            }
            if c.head != e.hash {
                return Err(self.contradicted(
                    i,
                    Contradiction::HashDiffers {
                        found: e.hash.clone(),
                    },
                ));
            }
            self.next += 1;
        }
        Ok(())
    }

    /// Ends the chain: a checkpoint beyond its last event is contradicted. Returns how many
    /// checkpoints matched.
    pub fn finish(self) -> Result<usize, Contradicted> {
        if let Some(&i) = self.order.get(self.next) {
            return Err(self.contradicted(
                i,
                Contradiction::Missing {
                    last_seq: self.last_seq,
                },
            ));
        }
        Ok(self.checkpoints.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditKind, NewAuditEvent, next_event};

    fn chain(n: i64, tag: &str) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 0..n {
            let e = NewAuditEvent::system(Timestamp::from_unix_secs(i), AuditKind::Login)
                .detail(serde_json::json!({ "tag": tag, "i": i }));
            let head = out.last().map(|l| (l.seq, l.hash.as_str()));
            let next = next_event(head, e);
            out.push(next);
        }
        out
    }

    fn cp(e: &AuditEvent) -> Checkpoint {
        Checkpoint {
            seq: e.seq,
            head: e.hash.clone(),
            at: Timestamp::from_unix_secs(1_000 + e.seq),
            key_id: "k".into(),
        }
    }

    fn run(events: &[AuditEvent], cps: Vec<Checkpoint>) -> Result<usize, Contradicted> {
        let mut m = CheckpointMatcher::new(cps);
        for e in events {
            m.push(e)?;
        }
        m.finish()
    }

    #[test]
    fn signed_bytes_are_fixed() {
        let c = Checkpoint {
            seq: 7,
            head: "ab".into(),
            at: Timestamp::from_unix_millis(1),
            key_id: "id".into(),
        };
        let mut want = Vec::new();
        want.extend_from_slice(&27u64.to_be_bytes());
        want.extend_from_slice(b"exogate-audit-checkpoint-v1");
        want.extend_from_slice(&7i64.to_be_bytes());
        want.extend_from_slice(&2u64.to_be_bytes());
        want.extend_from_slice(b"ab");
        want.extend_from_slice(&1i64.to_be_bytes());
        want.extend_from_slice(&2u64.to_be_bytes());
        want.extend_from_slice(b"id");
        assert_eq!(c.signed_bytes(), want);
        assert_eq!(key_id(b"x").len(), 16);
    }

    #[test]
    fn an_untouched_chain_matches_its_checkpoints() {
        let events = chain(10, "a");
        let cps = vec![
            cp(&events[2]),
            cp(&events[6]),
            cp(&events[6]),
            cp(&events[9]),
        ];
        assert_eq!(run(&events, cps), Ok(4));
        assert_eq!(run(&events, vec![]), Ok(0));
    }

    #[test]
    fn a_rewritten_chain_names_the_first_contradicted_checkpoint() {
        let original = chain(10, "a");
        let cps = vec![cp(&original[1]), cp(&original[5]), cp(&original[8])];
        // Same length, other content from event 4 on.
        let mut rewritten = original[..3].to_vec();
        let mut rest = chain(10, "b");
        rewritten.extend(rest.drain(3..));
        let err = run(&rewritten, cps.clone()).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(matches!(err.problem, Contradiction::HashDiffers { .. }));
        // Shorter: the checkpoints beyond its end are missing.
        let err = run(&original[..4], cps.clone()).unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(err.problem, Contradiction::Missing { last_seq: 4 });
        // A gap in seq under a checkpoint.
        let mut gapped = original.clone();
        gapped.remove(5);
        let err = run(&gapped, cps).unwrap_err();
        assert_eq!(err.index, 1);
        assert_eq!(err.problem, Contradiction::Missing { last_seq: 5 });
    }
}
