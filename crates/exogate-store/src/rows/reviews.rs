//! (reviews) Access reviews' rows (`review_campaigns`, `review_companies`, `review_items`,
//! `review_links`) and their SQL, decoded the same way on both backends.

use exogate_core::inventory::InventoryRow;
use exogate_core::model::*;
use exogate_core::ports::StoreError;
use exogate_core::review::*;

use super::{InventoryRowDb, corrupt, parse_permission, ts};

pub(crate) const REVIEW_INSERT_CAMPAIGN: &str = "INSERT INTO review_campaigns (id, name, kinds, rights, due_at, schedule, state, created_by, created_by_name, created_at, closed_at, closed_by_name, previous, older_than_days) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
pub(crate) const REVIEW_INSERT_COMPANY: &str = "INSERT INTO review_companies (campaign_id, company_id, reviewers, request_id) VALUES ($1, $2, $3, NULL)";
pub(crate) const REVIEW_CAMPAIGN_COLS: &str = "id, name, kinds, rights, due_at, schedule, state, created_by, created_by_name, created_at, closed_at, closed_by_name, previous, older_than_days";
pub(crate) const REVIEW_COMPANIES: &str = "SELECT c.campaign_id, c.company_id, c.reviewers, c.request_id, COALESCE(n.items, 0) AS items, COALESCE(n.decided, 0) AS decided FROM review_companies c LEFT JOIN (SELECT company_id, COUNT(*) AS items, COUNT(verdict) AS decided FROM review_items WHERE campaign_id = $1 GROUP BY company_id) n ON n.company_id = c.company_id WHERE c.campaign_id = $1 ORDER BY c.company_id";
pub(crate) const REVIEW_BEGIN_CLOSE: &str =
    "UPDATE review_campaigns SET state = 'closing' WHERE id = $1 AND state = 'open'";
pub(crate) const REVIEW_STATE: &str = "SELECT state FROM review_campaigns WHERE id = $1";
pub(crate) const REVIEW_FINISH_CLOSE: &str = "UPDATE review_campaigns SET state = 'closed', closed_at = $2, closed_by_name = $3 WHERE id = $1 AND state = 'closing'";
pub(crate) const REVIEW_SET_REQUEST: &str =
    "UPDATE review_companies SET request_id = $3 WHERE campaign_id = $1 AND company_id = $2";
pub(crate) const REVIEW_LINK_INSERT: &str = "INSERT INTO review_links (id, secret_hash, campaign_id, company_id, label, expires_at, revoked_at, created_at, created_by_name) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8)";
pub(crate) const REVIEW_LINK_COLS: &str = "id, secret_hash, campaign_id, company_id, label, expires_at, revoked_at, created_at, created_by_name";
pub(crate) const REVIEW_LINK_REVOKE: &str = "UPDATE review_links SET revoked_at = $3 WHERE campaign_id = $1 AND id = $2 AND revoked_at IS NULL";
pub(crate) const REVIEW_KEY_INSERT: &str =
    "INSERT INTO review_link_key (id, key) VALUES (1, $1) ON CONFLICT DO NOTHING";
pub(crate) const REVIEW_KEY_GET: &str = "SELECT key FROM review_link_key WHERE id = 1";
/// Scheduled campaigns whose next start (`created_at` + `$2` days for their schedule) has
/// come, and that no campaign repeats yet.
pub(crate) const REVIEW_DUE_REPEATS: &str = "SELECT id FROM review_campaigns c WHERE schedule IS NOT NULL AND created_at + (CASE schedule WHEN 'monthly' THEN 30 WHEN 'quarterly' THEN 91 ELSE 365 END) * CAST(86400000 AS BIGINT) <= $1 AND NOT EXISTS (SELECT 1 FROM review_campaigns n WHERE n.previous = c.id) ORDER BY created_at LIMIT 100";

pub(crate) const REVIEW_DUE_REMINDERS: &str = "SELECT id FROM review_campaigns WHERE state = 'open' AND reminded_at IS NULL AND due_at > $1 AND due_at <= $2 ORDER BY due_at LIMIT 100";
pub(crate) const REVIEW_MARK_REMINDED: &str = "UPDATE review_campaigns SET reminded_at = $2 WHERE id = $1 AND reminded_at IS NULL AND state = 'open'";

/// Copies one company's current inventory rows in scope into items (`$1` campaign, `$2` the
/// number before its first item, `$3` company, `$4`… the orphan default's reason, by, at,
/// `$7` (review-age) the first-seen cutoff (NULL: none; rows first seen after it are left
/// out, rows never stamped count as old), then the kinds and rights), numbered in the order
/// the pages show them.
pub(crate) fn review_copy_sql(kinds: usize, rights: usize) -> String {
    let mut sql = format!(
        "INSERT INTO review_items ({REVIEW_ITEM_COLS}) SELECT $1, $2 + ROW_NUMBER() OVER (ORDER BY lower(r.mailbox_address), r.permission, lower(COALESCE(r.trustee_address, r.trustee_raw)), r.trustee_key, r.mailbox_id), r.company_id, r.generation, r.mailbox_id, r.mailbox_address, r.mailbox_name, r.mailbox_kind, r.trustee_key, r.trustee_raw, r.trustee_sid, r.trustee_class, r.trustee_id, r.trustee_address, r.trustee_name, r.trustee_kind, r.permission, CASE WHEN r.trustee_class = 'orphan' THEN 'remove' END, CASE WHEN r.trustee_class = 'orphan' THEN CAST($4 AS TEXT) END, NULL, CASE WHEN r.trustee_class = 'orphan' THEN CAST($5 AS TEXT) END, CASE WHEN r.trustee_class = 'orphan' THEN CAST($6 AS BIGINT) END, r.first_seen_at FROM inventory_rows r JOIN inventory_state s ON s.company_id = r.company_id AND r.generation = s.current_gen WHERE r.company_id = $3 AND (CAST($7 AS BIGINT) IS NULL OR r.first_seen_at IS NULL OR r.first_seen_at <= CAST($7 AS BIGINT))"
    );
    let mut n = 7;
    let mut list = |col: &str, k: usize, sql: &mut String| {
        if k == 0 {
            return;
        }
        let marks: Vec<String> = (0..k)
            .map(|_| {
                n += 1;
                format!("${n}")
            })
            .collect();
        sql.push_str(&format!(" AND {col} IN ({})", marks.join(", ")));
    };
    list("r.mailbox_kind", kinds, &mut sql);
    list("r.permission", rights, &mut sql);
    sql
}

/// Columns of an item row (after `campaign_id, item_no`): the inventory's 15, then the
/// decision's 5, then (review-age) when the row was first seen.
pub(crate) const REVIEW_ITEM_COLS: &str = "campaign_id, item_no, company_id, generation, mailbox_id, mailbox_address, mailbox_name, mailbox_kind, trustee_key, trustee_raw, trustee_sid, trustee_class, trustee_id, trustee_address, trustee_name, trustee_kind, permission, verdict, reason, decided_by, decided_by_name, decided_at, first_seen_at";
pub(crate) fn list_of<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

fn parts(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

#[derive(sqlx::FromRow)]
pub(crate) struct CampaignDb {
    id: String,
    name: String,
    kinds: String,
    rights: String,
    due_at: i64,
    schedule: Option<String>,
    state: String,
    created_by: String,
    created_by_name: String,
    created_at: i64,
    closed_at: Option<i64>,
    closed_by_name: Option<String>,
    previous: Option<String>,
    // (review-age)
    older_than_days: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct CampaignCompanyDb {
    #[allow(dead_code, reason = "selected to key the rows; the campaign is known")]
    campaign_id: String,
    company_id: String,
    reviewers: String,
    request_id: Option<String>,
    items: i64,
    decided: i64,
}

impl TryFrom<CampaignCompanyDb> for CampaignCompany {
    type Error = StoreError;
    fn try_from(r: CampaignCompanyDb) -> Result<Self, StoreError> {
        Ok(Self {
            company: CompanyId::parse(&r.company_id)
                .map_err(|_| corrupt("company id", &r.company_id))?,
            reviewers: parts(&r.reviewers)
                .map(|u| UserId::parse(u).map_err(|_| corrupt("user id", u)))
                .collect::<Result<_, _>>()?,
            request: r
                .request_id
                .as_deref()
                .map(|s| RequestId::parse(s).map_err(|_| corrupt("request id", s)))
                .transpose()?,
            items: u64::try_from(r.items).unwrap_or(0),
            decided: u64::try_from(r.decided).unwrap_or(0),
        })
    }
}

impl CampaignDb {
    pub(crate) fn id(&self) -> String {
        self.id.clone()
    }
    pub(crate) fn into_campaign(
        self,
        companies: Vec<CampaignCompany>,
    ) -> Result<Campaign, StoreError> {
        let rights = parts(&self.rights)
            .map(|r| parse_permission(r).ok_or_else(|| corrupt("permission", r)))
            .collect::<Result<_, _>>()?;
        Ok(Campaign {
            id: CampaignId::parse(&self.id).map_err(|_| corrupt("campaign id", &self.id))?,
            name: self.name,
            scope: Scope {
                companies: companies.iter().map(|c| c.company.clone()).collect(),
                kinds: parts(&self.kinds)
                    .map(|k| RecipientKind::parse(k).ok_or_else(|| corrupt("recipient kind", k)))
                    .collect::<Result<_, _>>()?,
                rights,
                // (review-age)
                older_than_days: self
                    .older_than_days
                    .map(|d| u32::try_from(d).map_err(|_| corrupt("days", &d.to_string())))
                    .transpose()?,
            },
            due_at: Timestamp::from_unix_millis(self.due_at),
            schedule: self.schedule.as_deref().and_then(Schedule::parse),
            state: CampaignState::parse(&self.state)
                .ok_or_else(|| corrupt("campaign state", &self.state))?,
            created_by: UserId::parse(&self.created_by)
                .map_err(|_| corrupt("user id", &self.created_by))?,
            created_by_name: self.created_by_name,
            created_at: Timestamp::from_unix_millis(self.created_at),
            closed_at: ts(self.closed_at),
            closed_by_name: self.closed_by_name,
            previous: self
                .previous
                .as_deref()
                .map(|p| CampaignId::parse(p).map_err(|_| corrupt("campaign id", p)))
                .transpose()?,
            companies,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ReviewItemDb {
    #[allow(
        dead_code,
        reason = "selected with the other columns; the campaign is known"
    )]
    campaign_id: String,
    item_no: i64,
    #[sqlx(flatten)]
    row: InventoryRowDb,
    verdict: Option<String>,
    reason: Option<String>,
    decided_by: Option<String>,
    decided_by_name: Option<String>,
    decided_at: Option<i64>,
    // (review-age)
    first_seen_at: Option<i64>,
}

impl TryFrom<ReviewItemDb> for ReviewItem {
    type Error = StoreError;
    fn try_from(r: ReviewItemDb) -> Result<Self, StoreError> {
        let decision = match (r.verdict.as_deref(), r.decided_at) {
            (Some(v), Some(at)) => Some(ItemDecision {
                verdict: Verdict::parse(v).ok_or_else(|| corrupt("verdict", v))?,
                reason: r.reason,
                by_user: r
                    .decided_by
                    .as_deref()
                    .map(|u| UserId::parse(u).map_err(|_| corrupt("user id", u)))
                    .transpose()?,
                by: r.decided_by_name.unwrap_or_default(),
                at: Timestamp::from_unix_millis(at),
            }),
            _ => None,
        };
        Ok(Self {
            no: r.item_no,
            row: InventoryRow::try_from(r.row)?,
            decision,
            first_seen: ts(r.first_seen_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ReviewLinkDb {
    id: String,
    secret_hash: String,
    campaign_id: String,
    company_id: String,
    label: String,
    expires_at: i64,
    revoked_at: Option<i64>,
    created_at: i64,
    created_by_name: String,
}

impl TryFrom<ReviewLinkDb> for ReviewLink {
    type Error = StoreError;
    fn try_from(r: ReviewLinkDb) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.id,
            secret_hash: r.secret_hash,
            campaign: CampaignId::parse(&r.campaign_id)
                .map_err(|_| corrupt("campaign id", &r.campaign_id))?,
            company: CompanyId::parse(&r.company_id)
                .map_err(|_| corrupt("company id", &r.company_id))?,
            label: r.label,
            expires_at: Timestamp::from_unix_millis(r.expires_at),
            revoked_at: ts(r.revoked_at),
            created_at: Timestamp::from_unix_millis(r.created_at),
            created_by_name: r.created_by_name,
        })
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The item query for `filter` (placeholders only; bind in the order the Vec lists).
pub(crate) fn review_items_sql(filter: &ItemFilter) -> (String, Vec<ItemArg>) {
    let mut sql = format!("SELECT {REVIEW_ITEM_COLS} FROM review_items WHERE campaign_id = $1");
    let mut args = Vec::new();
    let mut n = 1;
    let mut push = |sql: &mut String, clause: &str, arg: ItemArg| {
        n += 1;
        sql.push_str(&clause.replace("$?", &format!("${n}")));
        args.push(arg);
    };
    if let Some(c) = &filter.company {
        push(
            &mut sql,
            " AND company_id = $?",
            ItemArg::Text(c.to_string()),
        );
    }
    if filter.exact {
        if let Some(m) = &filter.mailbox {
            let m = m.trim().to_lowercase();
            push(
                &mut sql,
                " AND (lower(mailbox_address) = $?",
                ItemArg::Text(m.clone()),
            );
            push(&mut sql, " OR mailbox_id = $?)", ItemArg::Text(m));
        }
        if let Some(t) = &filter.trustee {
            let t = t.trim().to_lowercase();
            push(
                &mut sql,
                " AND (lower(COALESCE(trustee_address, '')) = $?",
                ItemArg::Text(t.clone()),
            );
            push(
                &mut sql,
                " OR lower(trustee_raw) = $?",
                ItemArg::Text(t.clone()),
            );
            push(&mut sql, " OR lower(trustee_key) = $?)", ItemArg::Text(t));
        }
    } else if let Some(m) = &filter.mailbox {
        let p = format!("%{}%", like_escape(m.trim()));
        push(
            &mut sql,
            " AND (lower(mailbox_address) LIKE $? ESCAPE '\\'",
            ItemArg::Text(p.clone()),
        );
        push(
            &mut sql,
            " OR mailbox_id LIKE $? ESCAPE '\\')",
            ItemArg::Text(p),
        );
    }
    if let (false, Some(t)) = (filter.exact, &filter.trustee) {
        let p = format!("%{}%", like_escape(t.trim()));
        push(
            &mut sql,
            " AND (lower(COALESCE(trustee_address, '')) LIKE $? ESCAPE '\\'",
            ItemArg::Text(p.clone()),
        );
        push(
            &mut sql,
            " OR lower(trustee_raw) LIKE $? ESCAPE '\\'",
            ItemArg::Text(p.clone()),
        );
        push(
            &mut sql,
            " OR trustee_key LIKE $? ESCAPE '\\')",
            ItemArg::Text(p),
        );
    }
    if let Some(items) = &filter.items {
        sql.push_str(" AND item_no IN (");
        for (i, no) in items.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            push(&mut sql, "$?", ItemArg::Int(*no));
        }
        sql.push(')');
    }
    if filter.undecided {
        sql.push_str(" AND verdict IS NULL");
    }
    if filter.removals {
        sql.push_str(" AND verdict = 'remove'");
    }
    if filter.after > 0 {
        push(&mut sql, " AND item_no > $?", ItemArg::Int(filter.after));
    }
    sql.push_str(" ORDER BY item_no");
    if filter.limit > 0 {
        push(&mut sql, " LIMIT $?", ItemArg::Int(i64::from(filter.limit)));
    }
    (sql, args)
}

pub(crate) enum ItemArg {
    Text(String),
    Int(i64),
}
