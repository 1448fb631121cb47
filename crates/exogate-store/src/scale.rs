//! (scale) Inventory answers across many companies in a fixed number of statements: the
//! statuses of a list of companies, and "what can X open" in every company at once (the
//! directory lookup, then the rows held directly and through groups), each statement served by
//! the indexes of migration 0014. Companies go in chunks so no statement exceeds the
//! backends' parameter limits.

use std::collections::BTreeMap;

use exogate_core::inventory::{InventoryRow, InventoryStatus, UserMatch};
use exogate_core::model::CompanyId;
use exogate_core::ports::StoreResult;
use sqlx::AssertSqlSafe;

use crate::rows::{InventoryRowDb, InventoryStateDb};
use crate::{Db, db_err};

/// Companies per statement (three parameters each in the rows statement).
const CHUNK: usize = 300;

fn marks(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lowercase local part of an address column, as indexed by migration 0014 (differs per
/// backend; rows are still checked with the exact `LIKE` of `inventory_by_trustee`).
fn local(db: &Db, col: &str) -> String {
    match db {
        Db::Sqlite(_) => format!("substr(lower({col}), 1, instr(lower({col}), '@') - 1)"),
        Db::Postgres(_) => format!("split_part(lower({col}), '@', 1)"),
    }
}

fn statuses_sql(n: usize) -> String {
    format!(
        "SELECT s.company_id, s.tenant_id, s.current_gen, s.as_of, s.current_mailboxes, s.sweep_gen, s.sweep_state, s.sweep_started_at, s.sweep_finished_at, s.sweep_error, s.sweep_lease_until, CASE WHEN s.current_gen IS NULL THEN 0 WHEN s.current_rows IS NOT NULL THEN s.current_rows ELSE (SELECT COUNT(*) FROM inventory_rows r WHERE r.company_id = s.company_id AND r.generation = s.current_gen) END AS rows FROM inventory_state s WHERE s.company_id IN ({})",
        marks(1, n)
    )
}

/// Per company: the distinct recipients of its current generation carrying `$1`.
fn lookup_sql(n: usize) -> String {
    format!(
        "SELECT d.company_id, COUNT(*), MIN(d.object_id) FROM (SELECT DISTINCT n.company_id, n.object_id, n.address, n.display_name, n.kind FROM inventory_names n JOIN inventory_state s ON s.company_id = n.company_id AND n.generation = s.current_gen WHERE n.name = $1 AND n.company_id IN ({})) d GROUP BY d.company_id",
        marks(2, n)
    )
}

const ROW_COLS: &str = "r.company_id, r.generation, r.mailbox_id, r.mailbox_address, r.mailbox_name, r.mailbox_kind, r.trustee_key, r.trustee_raw, r.trustee_sid, r.trustee_class, r.trustee_id, r.trustee_address, r.trustee_name, r.trustee_kind, r.permission";

/// The rows of each `(company, needle, like pattern)` of the VALUES list, matched as
/// `inventory_by_trustee` matches them; every branch of the UNIONs is one index probe per
/// company; the matches are merged on the rows' keys, then each row is read once.
fn rows_sql(db: &Db, n: usize) -> String {
    let values = (0..n)
        .map(|i| {
            let b = 3 * i + 1;
            format!(
                "(CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT))",
                b,
                b + 1,
                b + 2
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let m_local = local(db, "m.member_address");
    let r_local = local(db, "r.trustee_address");
    let on_m = "m.company_id = c.company_id AND m.generation = c.generation";
    let on_r = "r.company_id = c.company_id AND r.generation = c.generation";
    let key = "r.company_id, r.generation, r.mailbox_id, r.trustee_key, r.permission";
    format!(
        "WITH q(company_id, needle, pat) AS (VALUES {values}), \
         c AS (SELECT q.company_id, s.current_gen AS generation, q.needle, q.pat FROM q JOIN inventory_state s ON s.company_id = q.company_id WHERE s.current_gen IS NOT NULL), \
         g AS (SELECT m.company_id, m.generation, m.group_id FROM c JOIN inventory_members m ON {on_m} AND m.member_id = c.needle \
           UNION SELECT m.company_id, m.generation, m.group_id FROM c JOIN inventory_members m ON {on_m} AND lower(m.member_address) = c.needle \
           UNION SELECT m.company_id, m.generation, m.group_id FROM c JOIN inventory_members m ON {on_m} AND c.pat IS NOT NULL AND {m_local} = c.needle AND lower(m.member_address) LIKE c.pat ESCAPE '!'), \
         h AS (SELECT {key} FROM c JOIN inventory_rows r ON {on_r} AND r.trustee_key = c.needle \
           UNION SELECT {key} FROM c JOIN inventory_rows r ON {on_r} AND lower(r.trustee_address) = c.needle \
           UNION SELECT {key} FROM c JOIN inventory_rows r ON {on_r} AND lower(r.trustee_raw) = c.needle \
           UNION SELECT {key} FROM c JOIN inventory_rows r ON {on_r} AND c.pat IS NOT NULL AND {r_local} = c.needle AND lower(r.trustee_address) LIKE c.pat ESCAPE '!' \
           UNION SELECT {key} FROM g JOIN inventory_rows r ON r.company_id = g.company_id AND r.generation = g.generation AND r.trustee_key = g.group_id) \
         SELECT {ROW_COLS} FROM h JOIN inventory_rows r ON r.company_id = h.company_id AND r.generation = h.generation AND r.mailbox_id = h.mailbox_id AND r.trustee_key = h.trustee_key AND r.permission = h.permission \
         ORDER BY r.company_id, r.mailbox_address, r.permission, r.trustee_key"
    )
}

/// `needle` as `inventory_by_trustee` compares it, and its "local part of an address" pattern
/// (none when the needle holds an `@`: the local-part index only knows what precedes an
/// address's first `@`, so such a needle is matched on whole addresses only).
fn needle(s: &str) -> (String, Option<String>) {
    let n = s.trim().to_lowercase();
    let like = (!n.contains('@')).then(|| {
        format!(
            "{}@%",
            n.replace('!', "!!").replace('%', "!%").replace('_', "!_")
        )
    });
    (n, like)
}

/// What to look for in a company where the directory found `count` recipients carrying the
/// typed name (`n`, with its local-part pattern `like`): none, the name itself; one, that
/// recipient's object id; several, nothing (the name is ambiguous there).
fn company_needle(
    count: usize,
    id: &str,
    n: &str,
    like: &Option<String>,
) -> Option<(String, Option<String>)> {
    match count {
        0 => Some((n.to_owned(), like.clone())),
        1 => Some(needle(id)),
        _ => None,
    }
}

/// The answer per company, in company order, leaving out the companies that know nothing of
/// the name (no recipient carries it and no row matched).
fn user_matches(
    companies: &[CompanyId],
    names: impl Fn(&str) -> usize,
    mut rows: impl FnMut(&str) -> Vec<InventoryRow>,
    out: &mut Vec<UserMatch>,
) {
    for c in companies {
        let names = names(c.as_str());
        let rows = rows(c.as_str());
        if names == 0 && rows.is_empty() {
            continue;
        }
        out.push(UserMatch {
            company: c.clone(),
            names,
            rows,
        });
    }
}

impl Db {
    pub(crate) async fn scale_statuses(
        &self,
        companies: &[CompanyId],
    ) -> StoreResult<Vec<InventoryStatus>> {
        if let Db::Postgres(p) = self {
            return pg_statuses(p, companies).await;
        }
        let mut out = Vec::with_capacity(companies.len());
        for chunk in companies.chunks(CHUNK) {
            let sql = statuses_sql(chunk.len());
            let rows: Vec<InventoryStateDb> = match self {
                Db::Sqlite(p) => {
                    let mut q = sqlx::query_as(AssertSqlSafe(sql));
                    for c in chunk {
                        q = q.bind(c.as_str().to_owned());
                    }
                    q.fetch_all(p).await
                }
                Db::Postgres(p) => {
                    let mut q = sqlx::query_as(AssertSqlSafe(sql));
                    for c in chunk {
                        q = q.bind(c.as_str().to_owned());
                    }
                    q.fetch_all(p).await
                }
            }
            .map_err(db_err)?;
            for r in rows {
                out.push(InventoryStatus::try_from(r)?);
            }
        }
        Ok(out)
    }

    pub(crate) async fn scale_user_matches(
        &self,
        companies: &[CompanyId],
        name: &str,
    ) -> StoreResult<Vec<UserMatch>> {
        if let Db::Postgres(p) = self {
            return pg_user_matches(p, companies, name).await;
        }
        let (n, like) = needle(name);
        let mut out = Vec::new();
        for chunk in companies.chunks(CHUNK) {
            // 1. The directory: how many recipients carry the name in each company.
            let sql = lookup_sql(chunk.len());
            let found: Vec<(String, i64, String)> = match self {
                Db::Sqlite(p) => {
                    let mut q = sqlx::query_as(AssertSqlSafe(sql)).bind(n.clone());
                    for c in chunk {
                        q = q.bind(c.as_str().to_owned());
                    }
                    q.fetch_all(p).await
                }
                Db::Postgres(p) => {
                    let mut q = sqlx::query_as(AssertSqlSafe(sql)).bind(n.clone());
                    for c in chunk {
                        q = q.bind(c.as_str().to_owned());
                    }
                    q.fetch_all(p).await
                }
            }
            .map_err(db_err)?;
            let found: BTreeMap<String, (usize, String)> = found
                .into_iter()
                .map(|(c, k, id)| (c, (usize::try_from(k).unwrap_or(0), id)))
                .collect();
            // 2. The needle per company: the one recipient's object id, else the name itself.
            let mut names = BTreeMap::new();
            let mut asks: Vec<(String, String, Option<String>)> = Vec::new();
            for c in chunk {
                let (count, id) = found.get(c.as_str()).cloned().unwrap_or_default();
                names.insert(c.as_str().to_owned(), count);
                if let Some((i, l)) = company_needle(count, &id, &n, &like) {
                    asks.push((c.as_str().to_owned(), i, l));
                }
            }
            // 3. The rows, in one statement for every company of the chunk.
            let mut rows: BTreeMap<String, Vec<InventoryRow>> = BTreeMap::new();
            if !asks.is_empty() {
                let sql = rows_sql(self, asks.len());
                let got: Vec<InventoryRowDb> = match self {
                    Db::Sqlite(p) => {
                        let mut q = sqlx::query_as(AssertSqlSafe(sql));
                        for (c, i, l) in &asks {
                            q = q.bind(c.clone()).bind(i.clone()).bind(l.clone());
                        }
                        q.fetch_all(p).await
                    }
                    Db::Postgres(p) => {
                        let mut q = sqlx::query_as(AssertSqlSafe(sql));
                        for (c, i, l) in &asks {
                            q = q.bind(c.clone()).bind(i.clone()).bind(l.clone());
                        }
                        q.fetch_all(p).await
                    }
                }
                .map_err(db_err)?;
                for r in got {
                    let r = InventoryRow::try_from(r)?;
                    rows.entry(r.company.as_str().to_owned())
                        .or_default()
                        .push(r);
                }
            }
            // 4. Companies that know nothing are left out (those with no current generation
            //    have neither names nor rows above).
            user_matches(
                chunk,
                |c| names.get(c).copied().unwrap_or(0),
                |c| rows.remove(c).unwrap_or_default(),
                &mut out,
            );
        }
        out.sort_by(|a, b| a.company.as_str().cmp(b.company.as_str()));
        Ok(out)
    }
}

// (scale2) PostgreSQL: every company in one statement each, the companies and needles bound as
// arrays, and every way of matching one probe of a key-first index of migration 0017 (one per
// distinct needle), joined with each company's current generation. See docs/OPERATIONS.md.

const PG_STATUSES: &str = "SELECT s.company_id, s.tenant_id, s.current_gen, s.as_of, s.current_mailboxes, s.sweep_gen, s.sweep_state, s.sweep_started_at, s.sweep_finished_at, s.sweep_error, s.sweep_lease_until, CASE WHEN s.current_gen IS NULL THEN 0 WHEN s.current_rows IS NOT NULL THEN s.current_rows ELSE (SELECT COUNT(*) FROM inventory_rows r WHERE r.company_id = s.company_id AND r.generation = s.current_gen) END AS rows FROM inventory_state s WHERE s.company_id = ANY($1::text[])";

/// Per company: the distinct recipients of its current generation carrying `$1`.
const PG_LOOKUP: &str = "SELECT d.company_id, COUNT(*), MIN(d.object_id) FROM (SELECT DISTINCT n.company_id, n.object_id, n.address, n.display_name, n.kind FROM inventory_names n JOIN inventory_state s ON s.company_id = n.company_id AND n.generation = s.current_gen WHERE n.name = $1 AND n.company_id = ANY($2::text[])) d GROUP BY d.company_id";

/// The rows of each `(company $1[i], needle $2[i], like pattern $3[i])`, matched as
/// `inventory_by_trustee` matches them. `$4`: the distinct needles; `$5`: those with a pattern
/// (no `@`). Each way of matching is one probe per distinct needle of its key-first index of
/// migration 0017, across all companies, joined with each company's current generation and
/// own needle; the address branch is an index-only scan (that index carries every column). A
/// raw value equal to the address is found by address only (the raw index leaves such rows
/// out). A row matched more than one way comes more than once; the caller keeps the first.
fn pg_rows_sql() -> String {
    let on = "c.company_id = r.company_id AND c.generation = r.generation";
    format!(
        "WITH c AS MATERIALIZED (SELECT q.company_id, s.current_gen AS generation, q.needle, q.pat FROM unnest($1::text[], $2::text[], $3::text[]) AS q(company_id, needle, pat) JOIN inventory_state s ON s.company_id = q.company_id WHERE s.current_gen IS NOT NULL), \
         g AS (SELECT DISTINCT m.company_id, m.generation, m.group_id FROM inventory_members m JOIN c ON c.company_id = m.company_id AND c.generation = m.generation \
           WHERE (m.member_id = ANY($4::text[]) OR lower(m.member_address) = ANY($4::text[]) OR split_part(lower(m.member_address), '@', 1) = ANY($5::text[])) \
           AND COALESCE(m.member_id = c.needle OR lower(m.member_address) = c.needle OR (split_part(lower(m.member_address), '@', 1) = c.needle AND lower(m.member_address) LIKE c.pat ESCAPE '!'), false)) \
         SELECT {ROW_COLS} FROM inventory_rows r JOIN c ON {on} AND c.needle = r.trustee_key WHERE r.trustee_key = ANY($4::text[]) \
         UNION ALL SELECT {ROW_COLS} FROM inventory_rows r JOIN c ON {on} AND c.needle = lower(r.trustee_address) WHERE lower(r.trustee_address) = ANY($4::text[]) \
         UNION ALL SELECT {ROW_COLS} FROM inventory_rows r JOIN c ON {on} AND c.needle = lower(r.trustee_raw) WHERE lower(r.trustee_raw) = ANY($4::text[]) AND lower(r.trustee_raw) IS DISTINCT FROM lower(r.trustee_address) \
         UNION ALL SELECT {ROW_COLS} FROM inventory_rows r JOIN c ON {on} AND c.needle = split_part(lower(r.trustee_address), '@', 1) WHERE split_part(lower(r.trustee_address), '@', 1) = ANY($5::text[]) AND lower(r.trustee_address) LIKE c.pat ESCAPE '!' \
         UNION ALL SELECT {ROW_COLS} FROM g JOIN inventory_rows r ON r.company_id = g.company_id AND r.generation = g.generation AND r.trustee_key = g.group_id \
         ORDER BY company_id, mailbox_address, permission, trustee_key"
    )
}

fn ids(companies: &[CompanyId]) -> Vec<String> {
    companies.iter().map(|c| c.as_str().to_owned()).collect()
}

async fn pg_statuses(
    p: &sqlx::PgPool,
    companies: &[CompanyId],
) -> StoreResult<Vec<InventoryStatus>> {
    let rows: Vec<InventoryStateDb> = sqlx::query_as(PG_STATUSES)
        .bind(ids(companies))
        .fetch_all(p)
        .await
        .map_err(db_err)?;
    rows.into_iter().map(InventoryStatus::try_from).collect()
}

async fn pg_user_matches(
    p: &sqlx::PgPool,
    companies: &[CompanyId],
    name: &str,
) -> StoreResult<Vec<UserMatch>> {
    let (n, like) = needle(name);
    // 1. The directory: how many recipients carry the name in each company.
    let found: Vec<(String, i64, String)> = sqlx::query_as(PG_LOOKUP)
        .persistent(false)
        .bind(n.clone())
        .bind(ids(companies))
        .fetch_all(p)
        .await
        .map_err(db_err)?;
    let found: std::collections::HashMap<String, (usize, String)> = found
        .into_iter()
        .map(|(c, k, id)| (c, (usize::try_from(k).unwrap_or(0), id)))
        .collect();
    // 2. The needle per company: the one recipient's object id, else the name itself.
    let mut names = std::collections::HashMap::new();
    let (mut cs, mut ns, mut ps) = (Vec::new(), Vec::new(), Vec::new());
    for c in companies {
        let (count, id) = found.get(c.as_str()).cloned().unwrap_or_default();
        names.insert(c.as_str(), count);
        let Some((i, l)) = company_needle(count, &id, &n, &like) else {
            continue;
        };
        cs.push(c.as_str().to_owned());
        ns.push(i);
        ps.push(l);
    }
    let mut distinct: Vec<String> = ns.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let mut local: Vec<String> = ns
        .iter()
        .zip(&ps)
        .filter(|(_, l)| l.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    local.sort_unstable();
    local.dedup();
    // 3. The rows, in one statement for every company, already ordered by company.
    let mut rows: std::collections::HashMap<String, Vec<InventoryRow>> =
        std::collections::HashMap::new();
    if !cs.is_empty() {
        // Not a kept prepared statement: each run is planned with its arrays (a generic plan,
        // which cannot see their sizes, scanned every company's rows: seconds, not ms).
        let got: Vec<InventoryRowDb> = sqlx::query_as(AssertSqlSafe(pg_rows_sql()))
            .persistent(false)
            .bind(cs)
            .bind(ns)
            .bind(ps)
            .bind(distinct)
            .bind(local)
            .fetch_all(p)
            .await
            .map_err(db_err)?;
        // A row matched several ways came several times: keep its first.
        let mut seen = std::collections::HashSet::with_capacity(got.len());
        for r in got {
            let r = InventoryRow::try_from(r)?;
            if !seen.insert((r.company.as_str().to_owned(), r.key())) {
                continue;
            }
            rows.entry(r.company.as_str().to_owned())
                .or_default()
                .push(r);
        }
    }
    // 4. Companies that know nothing are left out.
    let mut out = Vec::new();
    user_matches(
        companies,
        |c| names.get(c).copied().unwrap_or(0),
        |c| rows.remove(c).unwrap_or_default(),
        &mut out,
    );
    out.sort_by(|a, b| a.company.as_str().cmp(b.company.as_str()));
    Ok(out)
}
