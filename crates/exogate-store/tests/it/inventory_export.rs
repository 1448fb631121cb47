//! (scale2) A company's export read as a stream (`inventory_rows_stream`): the same rows in the
//! same order as `inventory_rows`, only the current generation, nothing of other companies; a
//! row that fails to decode mid-way ends the stream with an error after the rows before it;
//! a stream dropped early gives its connection back. And (PostgreSQL's array-bound lookup)
//! a company's own needle never matches in another company.

use exogate_core::action::Permission;
use exogate_core::inventory::InventoryRow;
use exogate_core::ports::{StoreError, StoreResult};
use futures::StreamExt as _;

use crate::inventory_scale::{company, member, names, one_by_one, row, sweep};
use crate::support::*;

async fn streamed(s: &dyn Store, c: &str) -> Vec<StoreResult<InventoryRow>> {
    s.inventory_rows_stream(&cid(c)).collect().await
}

both! {
    async fn rows_stream_gives_what_inventory_rows_gives(db: Db) {
        let s: &dyn Store = &db;
        for c in ["contoso", "fabrikam", "northwind"] {
            company(s, c).await;
        }
        use Permission::*;
        // More rows than the stream buffers, written in an order that is not the export's.
        let many: Vec<InventoryRow> = (0..700)
            .rev()
            .map(|i| row("contoso", "c.com", &format!("box{i:04}"), if i % 3 == 0 { "carol" } else { "group1" }, if i % 2 == 0 { FullAccess } else { SendAs }))
            .collect();
        sweep(s, "contoso", 1, &many[..10], &[], &[], true).await;
        // A second sweep: the first generation's rows are no longer current.
        sweep(s, "contoso", 1, &many, &[], &[], true).await;
        sweep(s, "fabrikam", 2, &[row("fabrikam", "f.com", "sales", "carol", FullAccess)], &[], &[], true).await;
        // northwind: a running sweep only, nothing current.
        sweep(s, "northwind", 3, &[row("northwind", "n.com", "x", "carol", FullAccess)], &[], &[], false).await;

        let want = s.inventory_rows(&cid("contoso")).await.unwrap();
        assert_eq!(want.len(), 700);
        let got: Vec<InventoryRow> = streamed(s, "contoso").await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, want);
        assert_eq!(got[0].mailbox.primary_address, "box0000@c.com", "in the export's order");
        let got: Vec<InventoryRow> = streamed(s, "fabrikam").await.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, s.inventory_rows(&cid("fabrikam")).await.unwrap());
        assert_eq!(got.len(), 1);
        assert!(streamed(s, "northwind").await.is_empty());
        assert!(streamed(s, "nosuch").await.is_empty());

        // Dropped after a few rows, many times over: each read gives its connection back (the
        // pool would run dry otherwise and the read after the loop would not answer).
        for _ in 0..40 {
            let mut rows = s.inventory_rows_stream(&cid("contoso"));
            assert!(rows.next().await.unwrap().is_ok());
        }
        assert_eq!(s.inventory_rows(&cid("contoso")).await.unwrap().len(), 700);
    }

    async fn rows_stream_ends_with_an_error_at_a_row_that_does_not_decode(db: Db) {
        let s: &dyn Store = &db;
        company(s, "contoso").await;
        let rows: Vec<InventoryRow> = (0..600)
            .map(|i| row("contoso", "c.com", &format!("box{i:04}"), "carol", Permission::FullAccess))
            .collect();
        sweep(s, "contoso", 1, &rows, &[], &[], true).await;
        // The 501st row in the export's order no longer decodes.
        assert_eq!(exec(&db, "UPDATE inventory_rows SET mailbox_kind = 'NotAKind' WHERE mailbox_address = 'box0500@c.com'".into()).await, 1);
        let got = streamed(s, "contoso").await;
        assert_eq!(got.len(), 501, "the rows before it, then the error, then nothing");
        assert!(got[..500].iter().all(Result::is_ok));
        assert!(matches!(got[500], Err(StoreError::Corrupt(_))), "{:?}", got[500]);
        // What the whole read says about the same row.
        assert!(s.inventory_rows(&cid("contoso")).await.is_err());
    }

    async fn a_needle_of_one_company_does_not_match_in_another(db: Db) {
        let s: &dyn Store = &db;
        for c in ["contoso", "fabrikam", "tailspin"] {
            company(s, c).await;
        }
        use Permission::*;
        // contoso's directory knows `pat` (object id `id-pat`), so contoso is asked for
        // `id-pat`; fabrikam's and tailspin's do not, so they are asked for `pat` itself.
        // fabrikam's rows hold `id-pat` as a trustee key and as a group member's id (under
        // other addresses), tailspin's `pat` as an address's local part: asked for `pat`,
        // fabrikam must answer nothing (its needle is `pat`, not contoso's `id-pat`).
        sweep(s, "contoso", 1, &[row("contoso", "c.com", "sales", "pat", FullAccess)], &[], &names("contoso", "c.com", "pat"), true).await;
        let mut f = row("fabrikam", "f.com", "ops", "pat", SendAs);
        f.trustee.identity.as_mut().unwrap().primary_address = "someone@f.com".into();
        let mut m = member("group9", "pat", "f.com");
        m.member.primary_address = "other@f.com".into();
        sweep(s, "fabrikam", 2, &[f, row("fabrikam", "f.com", "hr", "group9", FullAccess)], &[m], &[], true).await;
        sweep(s, "tailspin", 3, &[row("tailspin", "t.com", "it", "pat", SendAs)], &[], &[], true).await;
        let asked = [cid("contoso"), cid("fabrikam"), cid("tailspin")];
        for needle in ["pat", "PAT", "id-pat", "someone", "other@f.com", "pat@t.com"] {
            assert_eq!(s.inventory_user_matches(&asked, needle).await.unwrap(), one_by_one(s, &asked, needle).await, "{needle:?}");
        }
        let per = |got: Vec<exogate_core::inventory::UserMatch>| -> Vec<(String, usize, usize)> {
            got.iter().map(|m| (m.company.as_str().to_owned(), m.names, m.rows.len())).collect()
        };
        let pat = per(s.inventory_user_matches(&asked, "pat").await.unwrap());
        assert_eq!(pat, [("contoso".to_owned(), 1, 1), ("tailspin".to_owned(), 0, 1)]);
        // Asked for `id-pat` itself, fabrikam answers: directly and through group9.
        let id = per(s.inventory_user_matches(&asked, "id-pat").await.unwrap());
        assert_eq!(id, [("contoso".to_owned(), 1, 1), ("fabrikam".to_owned(), 0, 2), ("tailspin".to_owned(), 0, 1)]);
    }
}
