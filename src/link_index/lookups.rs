//! Lookups the blocks cannot answer by key, kept in the index's database: where a Sales
//! entity sits in the entities list, and which B2B user has an exact email. Entries are
//! hints: the loaders check every one against the block's answer and repair it (or drop
//! it) when the block disagrees.

use super::{
    LinkError, LinkIndex,
    store::{BATCH_LIMIT, Pool, in_transaction, on_pool},
};

/// The index's bookkeeping key of the entities list total the positions are complete for.
const ENTITY_LIST_TOTAL: &str = "lookup.sales_entities.total";

/// Where an entity was last seen in the Sales entities list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityPosition {
    /// The 1-based page, at [`EntityPosition::page_size`] records a page; `None` for an
    /// entity the gateway registered and has not seen in the list yet.
    pub page: Option<u32>,
    /// Records per page the position counts in.
    pub page_size: u32,
}

impl LinkIndex {
    /// Where the Sales entity `entity_id` was last seen.
    pub async fn entity_position(&self, entity_id: &str) -> Result<Option<EntityPosition>, LinkError> {
        self.ready().await?;
        let row: Option<(Option<i64>, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT page, page_size FROM sales_entity_positions WHERE entity_id = $1",
        )
        .bind(entity_id)
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(page, page_size)| EntityPosition {
            page: page.and_then(|page| u32::try_from(page).ok()),
            page_size: u32::try_from(page_size).unwrap_or(1),
        }))
    }

    /// Records where entities were seen, `(entity id, page)` at `page_size` a page,
    /// replacing what was recorded (batched, one transaction).
    pub async fn record_entity_positions(&self, positions: &[(String, u32)], page_size: u32) -> Result<(), LinkError> {
        if positions.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        // One row per entity in a statement (ON CONFLICT cannot touch a row twice): the
        // last place given wins.
        let mut latest: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        for (entity_id, page) in positions {
            latest.insert(entity_id, *page);
        }
        let positions: Vec<(&str, u32)> = latest.into_iter().collect();
        in_transaction!(self, tx => {
            for chunk in positions.chunks(BATCH_LIMIT) {
                let mut insert = sqlx::QueryBuilder::new("INSERT INTO sales_entity_positions (entity_id, page, page_size) ");
                insert.push_values(chunk, |mut row, (entity_id, page)| {
                    row.push_bind(*entity_id)
                        .push_bind(i64::from(*page))
                        .push_bind(i64::from(page_size));
                });
                insert.push(
                    " ON CONFLICT (entity_id) DO UPDATE SET page = excluded.page, page_size = excluded.page_size",
                );
                insert.build().execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Records an entity the gateway registered: it exists, its place is not known yet
    /// (a place already recorded is kept).
    pub async fn record_registered_entity(&self, entity_id: &str, page_size: u32) -> Result<(), LinkError> {
        self.ready().await?;
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO sales_entity_positions (entity_id, page, page_size) VALUES ($1, NULL, $2) \
                 ON CONFLICT (entity_id) DO NOTHING",
            )
            .bind(entity_id)
            .bind(i64::from(page_size))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets where an entity was (the block did not have it there). The positions are no
    /// longer a complete picture of the list, so the recorded list total goes too.
    pub async fn forget_entity_position(&self, entity_id: &str) -> Result<(), LinkError> {
        self.ready().await?;
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM sales_entity_positions WHERE entity_id = $1")
                .bind(entity_id)
                .execute(pool)
                .await?;
        });
        self.set_meta(ENTITY_LIST_TOTAL, None).await
    }

    /// Records that the positions now hold every entity of a list of `total` records (a
    /// walk read it to the end): while Sales reports the same total, an entity without a
    /// position is not in the list.
    pub async fn record_entity_list_total(&self, total: u64) -> Result<(), LinkError> {
        self.set_meta(ENTITY_LIST_TOTAL, Some(&total.to_string())).await
    }

    /// The entities list total the positions were complete for, if they were.
    pub async fn entity_list_total(&self) -> Result<Option<u64>, LinkError> {
        Ok(self.meta(ENTITY_LIST_TOTAL).await?.and_then(|total| total.parse().ok()))
    }

    /// The B2B user recorded for an exact email (any case).
    pub async fn b2b_user_by_email(&self, email: &str) -> Result<Option<i64>, LinkError> {
        self.ready().await?;
        let row: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT user_id FROM b2b_user_emails WHERE email = $1",
        )
        .bind(super::normalize_email(email))
        .fetch_optional(pool)
        .await?);
        Ok(row.map(|(id,)| id))
    }

    /// Records B2B users' emails, `(email, user id)`, replacing what was recorded for those
    /// emails (batched, one transaction). Blank emails are skipped.
    pub async fn record_b2b_emails(&self, users: &[(String, i64)]) -> Result<(), LinkError> {
        let users: Vec<(String, i64)> = users
            .iter()
            .map(|(email, id)| (super::normalize_email(email), *id))
            .filter(|(email, _)| !email.is_empty())
            .collect();
        if users.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        in_transaction!(self, tx => {
            for chunk in users.chunks(BATCH_LIMIT) {
                // One row per email in a statement: ON CONFLICT cannot touch a row twice.
                let mut seen = std::collections::HashSet::new();
                let chunk: Vec<&(String, i64)> = chunk.iter().filter(|(email, _)| seen.insert(email.as_str())).collect();
                let mut insert = sqlx::QueryBuilder::new("INSERT INTO b2b_user_emails (email, user_id) ");
                insert.push_values(chunk, |mut row, (email, id)| {
                    row.push_bind(email.as_str()).push_bind(*id);
                });
                insert.push(" ON CONFLICT (email) DO UPDATE SET user_id = excluded.user_id");
                insert.build().execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Forgets the B2B user recorded for an email (the block disagreed).
    pub async fn forget_b2b_email(&self, email: &str) -> Result<(), LinkError> {
        self.ready().await?;
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM b2b_user_emails WHERE email = $1")
                .bind(super::normalize_email(email))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// How many entries each lookup holds: (entity positions, B2B emails).
    pub async fn lookup_sizes(&self) -> Result<(u64, u64), LinkError> {
        self.ready().await?;
        let (positions, emails): ((i64,), (i64,)) = on_pool!(self, pool => (
            sqlx::query_as("SELECT COUNT(*) FROM sales_entity_positions").fetch_one(pool).await?,
            sqlx::query_as("SELECT COUNT(*) FROM b2b_user_emails").fetch_one(pool).await?,
        ));
        Ok((
            u64::try_from(positions.0).unwrap_or(0),
            u64::try_from(emails.0).unwrap_or(0),
        ))
    }
}
