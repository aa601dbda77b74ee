//! [`LinkIndex`]: the store over SQLite or PostgreSQL. Every query is written once, in SQL
//! both accept (`$n` parameters, `ON CONFLICT`, `RETURNING`), and run on whichever pool the
//! index holds through the `on_pool!` / `in_transaction!` macros.

use std::{str::FromStr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::{
    FromRow, PgPool, QueryBuilder, SqlitePool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use tokio::sync::OnceCell;

use super::{
    AddOutcome, Link, LinkBlock, LinkError, LinkIndexLocation, LinkSource, MergeReport, NewLink, normalize_email, now,
    plan_merge_links,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections to an SQLite file: WAL lets readers run beside the one writer.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections to PostgreSQL per gateway process.
const POSTGRES_MAX_CONNECTIONS: u32 = 8;
/// How long an operation waits for a connection (or SQLite's write lock) before failing.
const WAIT_FOR_DATABASE: Duration = Duration::from_secs(5);
/// Keys per batched lookup (well under SQLite's bound-parameter limit).
pub(super) const BATCH_LIMIT: usize = 500;

pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres { pool: PgPool, schema: Option<String> },
}

pub(super) struct Inner {
    pub(super) pool: Pool,
    /// Set once the tables exist (migrations ran in this process).
    migrated: OnceCell<()>,
}

/// The identity link index. Cheap to clone (one shared pool). Opening connects lazily; the
/// first operation (or [`LinkIndex::ready`]) creates the tables.
#[derive(Clone)]
pub struct LinkIndex {
    pub(super) inner: Arc<Inner>,
}

/// Runs `$body` with `$pool` bound to the typed pool (the body is compiled once per backend).
macro_rules! on_pool {
    ($index:expr, $pool:ident => $body:expr) => {
        match &$index.inner.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres { pool: $pool, .. } => $body,
        }
    };
}

/// Runs `$body` inside a transaction bound to `$tx`; commits when the body finishes, rolls
/// back when it leaves early with `?` (the transaction is dropped).
macro_rules! in_transaction {
    ($index:expr, $tx:ident => $body:expr) => {
        match &$index.inner.pool {
            Pool::Sqlite(pool) => {
                // IMMEDIATE takes the write lock up front: a deferred transaction that reads
                // first could fail to upgrade with SQLITE_BUSY instead of waiting its turn.
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            Pool::Postgres { pool, .. } => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

pub(super) use {in_transaction, on_pool};

const SELECT_HOLDER: &str = "SELECT identity_id, block, external_id, source, created_at FROM identity_links \
     WHERE block = $1 AND external_id = $2";
const UPSERT_EMAIL: &str = "INSERT INTO identity_emails (identity_id, email) VALUES ($1, $2) \
     ON CONFLICT (identity_id) DO UPDATE SET email = excluded.email";
const UPSERT_MERGE: &str = "INSERT INTO person_merges (person_id, survivor_id, merged_at) VALUES ($1, $2, $3) \
     ON CONFLICT (person_id) DO UPDATE SET survivor_id = excluded.survivor_id, merged_at = excluded.merged_at";
const INSERT_LINK: &str = "INSERT INTO identity_links (block, external_id, identity_id, source, created_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (block, external_id) DO NOTHING";

/// A link as stored.
#[derive(FromRow)]
struct LinkRow {
    identity_id: String,
    block: String,
    external_id: String,
    source: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<LinkRow> for Link {
    type Error = LinkError;

    fn try_from(row: LinkRow) -> Result<Self, LinkError> {
        Ok(Link {
            block: row.block.parse()?,
            source: row.source.parse()?,
            identity_id: row.identity_id,
            external_id: row.external_id,
            created_at: row.created_at,
        })
    }
}

/// A merge record: `person_id` was merged into `survivor_id`.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct MergeRecord {
    /// The merged (inactive) person.
    pub person_id: String,
    /// The person it was merged into.
    pub survivor_id: String,
    /// When the gateway recorded the merge.
    pub merged_at: DateTime<Utc>,
}

/// An identity's email as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct EmailRecord {
    /// The identity.
    pub identity_id: String,
    /// Its email, lower-cased.
    pub email: String,
}

/// Everything the index holds, each part in its stable export order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// Emails, by identity id.
    pub emails: Vec<EmailRecord>,
    /// Links, by identity id, block, external id.
    pub links: Vec<Link>,
    /// Merge records, by merged person id.
    pub merges: Vec<MergeRecord>,
}

/// What [`LinkIndex::write_contents`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteReport {
    /// Links written.
    pub added: usize,
    /// Links already held by the same identity, left as they were.
    pub kept: usize,
    /// Links refused because another identity holds the record: (refused, holder).
    pub conflicts: Vec<(Link, Link)>,
}

/// The persons a merge folds into `primary`: each once, in the order given, never the
/// primary itself.
fn merged_persons<'a>(primary: &str, duplicates: &'a [String]) -> Vec<&'a str> {
    let mut merged: Vec<&str> = Vec::with_capacity(duplicates.len());
    for duplicate in duplicates {
        if duplicate != primary && !merged.contains(&duplicate.as_str()) {
            merged.push(duplicate);
        }
    }
    merged
}

fn links_from(rows: Vec<LinkRow>) -> Result<Vec<Link>, LinkError> {
    rows.into_iter().map(Link::try_from).collect()
}

impl LinkIndex {
    /// Opens the index at `location` without connecting yet: the first operation connects
    /// and creates the tables (SQLite: the file too).
    pub fn open(location: &LinkIndexLocation) -> Result<Self, LinkError> {
        let pool = match location {
            LinkIndexLocation::Sqlite(path) => {
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(WAIT_FOR_DATABASE);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(SQLITE_MAX_CONNECTIONS)
                        .acquire_timeout(WAIT_FOR_DATABASE)
                        .connect_lazy_with(options),
                )
            }
            // One connection kept forever: each in-memory connection is its own database.
            LinkIndexLocation::Memory => Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(WAIT_FOR_DATABASE)
                    .connect_lazy_with(SqliteConnectOptions::new()),
            ),
            LinkIndexLocation::Postgres { url, schema } => {
                let mut options = PgConnectOptions::from_str(url.expose_secret()).map_err(|_| {
                    LinkError::Location("DATABASE_URL is not a PostgreSQL URL like postgres://user@host:5432/db".into())
                })?;
                if let Some(schema) = schema {
                    check_schema_name(schema)?;
                    options = options.options([("search_path", schema.as_str())]);
                }
                Pool::Postgres {
                    pool: PgPoolOptions::new()
                        .max_connections(POSTGRES_MAX_CONNECTIONS)
                        .acquire_timeout(WAIT_FOR_DATABASE)
                        .connect_lazy_with(options),
                    schema: schema.clone(),
                }
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                migrated: OnceCell::new(),
            }),
        })
    }

    /// Opens the index and makes sure it is reachable and its tables exist.
    pub async fn open_ready(location: &LinkIndexLocation) -> Result<Self, LinkError> {
        let index = Self::open(location)?;
        index.ready().await?;
        Ok(index)
    }

    /// Connects and creates or upgrades the tables, once per process.
    pub async fn ready(&self) -> Result<(), LinkError> {
        self.inner
            .migrated
            .get_or_try_init(|| async {
                match &self.inner.pool {
                    Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
                    Pool::Postgres { pool, schema } => {
                        if let Some(schema) = schema {
                            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
                            sqlx::query(&create).execute(pool).await?;
                        }
                        POSTGRES_MIGRATIONS.run(pool).await?
                    }
                }
                Ok::<(), LinkError>(())
            })
            .await?;
        Ok(())
    }

    /// Whether the store answers (readiness): connects and creates the tables when needed,
    /// then runs a trivial query.
    pub async fn ping(&self) -> Result<(), LinkError> {
        self.ready().await?;
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes the connections (waits for operations in flight).
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Adds a link unless the record is held: idempotent for the same identity, a
    /// [`AddOutcome::Conflict`] (nothing written) for another. The email, when given, is
    /// recorded for the identity unless the link conflicts.
    pub async fn add(&self, link: NewLink<'_>) -> Result<AddOutcome, LinkError> {
        self.ready().await?;
        let created_at = now();
        let email = link.email.map(normalize_email).filter(|email| !email.is_empty());
        let outcome = in_transaction!(self, tx => {
            let inserted = sqlx::query(INSERT_LINK)
                .bind(link.block.as_str())
                .bind(link.external_id)
                .bind(link.identity_id)
                .bind(link.source.as_str())
                .bind(created_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let holder: LinkRow = sqlx::query_as(SELECT_HOLDER)
                .bind(link.block.as_str())
                .bind(link.external_id)
                .fetch_one(&mut *tx)
                .await?;
            let holder = Link::try_from(holder)?;
            let outcome = if inserted == 1 {
                AddOutcome::Added(holder)
            } else if holder.identity_id == link.identity_id {
                AddOutcome::Kept(holder)
            } else {
                AddOutcome::Conflict { held_by: holder }
            };
            if let (Some(email), false) = (&email, matches!(outcome, AddOutcome::Conflict { .. })) {
                sqlx::query(UPSERT_EMAIL).bind(link.identity_id).bind(email).execute(&mut *tx).await?;
            }
            outcome
        });
        Ok(outcome)
    }

    /// Removes the link of `identity_id` to the record; `None` when that identity does not
    /// hold it (another identity's link is never removed).
    pub async fn remove(
        &self,
        identity_id: &str,
        block: LinkBlock,
        external_id: &str,
    ) -> Result<Option<Link>, LinkError> {
        self.ready().await?;
        let row: Option<LinkRow> = on_pool!(self, pool => sqlx::query_as(
            "DELETE FROM identity_links WHERE block = $1 AND external_id = $2 AND identity_id = $3 \
             RETURNING identity_id, block, external_id, source, created_at",
        )
        .bind(block.as_str())
        .bind(external_id)
        .bind(identity_id)
        .fetch_optional(pool)
        .await?);
        row.map(Link::try_from).transpose()
    }

    /// Records the email of an identity (lower-cased), replacing an earlier one.
    pub async fn set_email(&self, identity_id: &str, email: &str) -> Result<(), LinkError> {
        let email = normalize_email(email);
        if email.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        on_pool!(self, pool => {
            sqlx::query(UPSERT_EMAIL).bind(identity_id).bind(&email).execute(pool).await?;
        });
        Ok(())
    }

    /// The identities recorded with this email (case-insensitive), by id.
    pub async fn identities_by_email(&self, email: &str) -> Result<Vec<String>, LinkError> {
        self.ready().await?;
        let email = normalize_email(email);
        let ids: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT identity_id FROM identity_emails WHERE email = $1 ORDER BY identity_id",
        )
        .bind(&email)
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// Every recorded email, by identity id.
    pub async fn emails(&self) -> Result<Vec<EmailRecord>, LinkError> {
        self.ready().await?;
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT identity_id, email FROM identity_emails ORDER BY identity_id",
        )
        .fetch_all(pool)
        .await?))
    }

    /// Records emails for identities that have none yet (one transaction); an email
    /// already recorded is kept. Returns how many were recorded.
    pub async fn fill_missing_emails(&self, emails: &[EmailRecord]) -> Result<usize, LinkError> {
        self.ready().await?;
        let recorded = in_transaction!(self, tx => {
            let mut recorded = 0;
            for record in emails {
                let email = normalize_email(&record.email);
                if email.is_empty() {
                    continue;
                }
                recorded += sqlx::query(
                    "INSERT INTO identity_emails (identity_id, email) VALUES ($1, $2) \
                     ON CONFLICT (identity_id) DO NOTHING",
                )
                .bind(&record.identity_id)
                .bind(&email)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            recorded
        });
        Ok(usize::try_from(recorded).unwrap_or(usize::MAX))
    }

    /// Identities that have links but no recorded email, by id.
    pub async fn linked_identities_without_email(&self) -> Result<Vec<String>, LinkError> {
        self.ready().await?;
        let ids: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT identity_id FROM identity_links WHERE identity_id NOT IN \
             (SELECT identity_id FROM identity_emails) ORDER BY identity_id",
        )
        .fetch_all(pool)
        .await?);
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// The email recorded for an identity.
    pub async fn email_of(&self, identity_id: &str) -> Result<Option<String>, LinkError> {
        self.ready().await?;
        let email: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT email FROM identity_emails WHERE identity_id = $1",
        )
        .bind(identity_id)
        .fetch_optional(pool)
        .await?);
        Ok(email.map(|(email,)| email))
    }

    /// The link holding a record, if any.
    pub async fn holder(&self, block: LinkBlock, external_id: &str) -> Result<Option<Link>, LinkError> {
        Ok(self.holders(block, &[external_id.to_owned()]).await?.into_iter().next())
    }

    /// The links holding any of these records of one block.
    pub async fn holders(&self, block: LinkBlock, external_ids: &[String]) -> Result<Vec<Link>, LinkError> {
        self.ready().await?;
        let mut found = Vec::new();
        for chunk in external_ids.chunks(BATCH_LIMIT) {
            let rows: Vec<LinkRow> = on_pool!(self, pool => {
                let mut query = QueryBuilder::new(
                    "SELECT identity_id, block, external_id, source, created_at FROM identity_links WHERE block = ",
                );
                query.push_bind(block.as_str()).push(" AND external_id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await?
            });
            found.extend(links_from(rows)?);
        }
        Ok(found)
    }

    /// An identity's links, by block, then oldest first.
    pub async fn links_of(&self, identity_id: &str) -> Result<Vec<Link>, LinkError> {
        self.links_of_many(&[identity_id.to_owned()]).await
    }

    /// The links of several identities, by identity, block, then oldest first.
    pub async fn links_of_many(&self, identity_ids: &[String]) -> Result<Vec<Link>, LinkError> {
        self.ready().await?;
        let mut found = Vec::new();
        for chunk in identity_ids.chunks(BATCH_LIMIT) {
            let rows: Vec<LinkRow> = on_pool!(self, pool => {
                let mut query = QueryBuilder::new(
                    "SELECT identity_id, block, external_id, source, created_at FROM identity_links \
                     WHERE identity_id IN (",
                );
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                query.push(") ORDER BY identity_id, block, created_at, external_id");
                query.build_query_as().fetch_all(pool).await?
            });
            found.extend(links_from(rows)?);
        }
        Ok(found)
    }

    /// The person a merged person was merged into (merge chains are kept flat, so this is
    /// the survivor); `None` for a person never merged.
    pub async fn survivor_of(&self, person_id: &str) -> Result<Option<String>, LinkError> {
        Ok(self
            .survivors_of(&[person_id.to_owned()])
            .await?
            .into_iter()
            .next()
            .map(|record| record.survivor_id))
    }

    /// The merge records of any of these persons.
    pub async fn survivors_of(&self, person_ids: &[String]) -> Result<Vec<MergeRecord>, LinkError> {
        self.ready().await?;
        let mut found = Vec::new();
        for chunk in person_ids.chunks(BATCH_LIMIT) {
            let rows: Vec<MergeRecord> = on_pool!(self, pool => {
                let mut query =
                    QueryBuilder::new("SELECT person_id, survivor_id, merged_at FROM person_merges WHERE person_id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await?
            });
            found.extend(rows);
        }
        Ok(found)
    }

    /// Records that `duplicates` were merged into `primary` and moves their CRM links onto
    /// it (see [`plan_merge_links`]), all in one transaction: a failure half-way leaves every
    /// earlier link and merge record as it was. A duplicate's link is dropped when the same
    /// identity already holds the primary, and left in place (reported) when another
    /// identity does.
    pub async fn merge(&self, primary: &str, duplicates: &[String]) -> Result<MergeReport, LinkError> {
        self.ready().await?;
        let at = now();
        let duplicates = merged_persons(primary, duplicates);
        let report = in_transaction!(self, tx => {
            // The primary survives this merge, whatever an earlier one said about it.
            sqlx::query("DELETE FROM person_merges WHERE person_id = $1")
                .bind(primary)
                .execute(&mut *tx)
                .await?;
            for duplicate in &duplicates {
                // Persons merged into the duplicate earlier now lead to the primary.
                sqlx::query("UPDATE person_merges SET survivor_id = $1 WHERE survivor_id = $2")
                    .bind(primary)
                    .bind(duplicate)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(UPSERT_MERGE)
                    .bind(duplicate)
                    .bind(primary)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut holders = Vec::with_capacity(duplicates.len() + 1);
            for person in std::iter::once(primary).chain(duplicates.iter().copied()) {
                let held: Option<LinkRow> = sqlx::query_as(SELECT_HOLDER)
                    .bind(LinkBlock::Crm.as_str())
                    .bind(person)
                    .fetch_optional(&mut *tx)
                    .await?;
                holders.push(held.map(Link::try_from).transpose()?);
            }
            let primary_holder = holders.remove(0);
            let report = plan_merge_links(primary, primary_holder, holders.into_iter().flatten(), at);
            for (held, _) in &report.moved {
                sqlx::query(
                    "UPDATE identity_links SET external_id = $1, source = $2, created_at = $3 \
                     WHERE block = $4 AND external_id = $5",
                )
                .bind(primary)
                .bind(LinkSource::Merged.as_str())
                .bind(at)
                .bind(LinkBlock::Crm.as_str())
                .bind(&held.external_id)
                .execute(&mut *tx)
                .await?;
            }
            for dropped in &report.dropped {
                sqlx::query("DELETE FROM identity_links WHERE block = $1 AND external_id = $2")
                    .bind(LinkBlock::Crm.as_str())
                    .bind(&dropped.external_id)
                    .execute(&mut *tx)
                    .await?;
            }
            report
        });
        Ok(report)
    }

    /// What [`merge`](Self::merge) would do with the links of `duplicates` now, without
    /// writing anything (the merge preview).
    pub async fn plan_merge(&self, primary: &str, duplicates: &[String]) -> Result<MergeReport, LinkError> {
        let duplicates = merged_persons(primary, duplicates);
        let primary_holder = self.holder(LinkBlock::Crm, primary).await?;
        let owned: Vec<String> = duplicates.iter().map(|id| (*id).to_owned()).collect();
        let mut held = self.holders(LinkBlock::Crm, &owned).await?;
        held.sort_by_key(|link| duplicates.iter().position(|id| *id == link.external_id));
        Ok(plan_merge_links(primary, primary_holder, held, now()))
    }

    /// A value of the index's own bookkeeping.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, LinkError> {
        self.ready().await?;
        let value: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT value FROM link_index_meta WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await?);
        Ok(value.map(|(value,)| value))
    }

    /// Sets (or, with `None`, removes) a bookkeeping value.
    pub async fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), LinkError> {
        self.ready().await?;
        match value {
            Some(value) => on_pool!(self, pool => {
                sqlx::query(
                    "INSERT INTO link_index_meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?;
            }),
            None => on_pool!(self, pool => {
                sqlx::query("DELETE FROM link_index_meta WHERE key = $1").bind(key).execute(pool).await?;
            }),
        }
        Ok(())
    }

    /// Everything the index holds, in export order.
    pub async fn contents(&self) -> Result<Contents, LinkError> {
        self.ready().await?;
        let (emails, links, merges) = on_pool!(self, pool => {
            let emails: Vec<EmailRecord> =
                sqlx::query_as("SELECT identity_id, email FROM identity_emails ORDER BY identity_id")
                    .fetch_all(pool)
                    .await?;
            let links: Vec<LinkRow> = sqlx::query_as(
                "SELECT identity_id, block, external_id, source, created_at FROM identity_links \
                 ORDER BY identity_id, block, external_id",
            )
            .fetch_all(pool)
            .await?;
            let merges: Vec<MergeRecord> =
                sqlx::query_as("SELECT person_id, survivor_id, merged_at FROM person_merges ORDER BY person_id")
                    .fetch_all(pool)
                    .await?;
            (emails, links, merges)
        });
        Ok(Contents {
            emails,
            links: links_from(links)?,
            merges,
        })
    }

    /// Writes records as given (their own sources and times), in one transaction; with
    /// `replace`, everything else is removed first. Links follow [`LinkIndex::add`]: a record
    /// held by another identity is refused and reported, one held by the same is kept.
    pub async fn write_contents(&self, contents: &Contents, replace: bool) -> Result<WriteReport, LinkError> {
        self.ready().await?;
        let report = in_transaction!(self, tx => {
            if replace {
                for table in [
                    "identity_links",
                    "identity_emails",
                    "person_merges",
                    "link_index_meta",
                    "sales_entity_positions",
                    "b2b_user_emails",
                ] {
                    sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
                }
            }
            let mut report = WriteReport::default();
            for record in &contents.emails {
                sqlx::query(UPSERT_EMAIL).bind(&record.identity_id).bind(&record.email).execute(&mut *tx).await?;
            }
            for record in &contents.merges {
                sqlx::query(UPSERT_MERGE)
                    .bind(&record.person_id)
                    .bind(&record.survivor_id)
                    .bind(record.merged_at)
                    .execute(&mut *tx)
                    .await?;
            }
            for link in &contents.links {
                let inserted = sqlx::query(INSERT_LINK)
                    .bind(link.block.as_str())
                    .bind(&link.external_id)
                    .bind(&link.identity_id)
                    .bind(link.source.as_str())
                    .bind(link.created_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 1 {
                    report.added += 1;
                    continue;
                }
                let holder: LinkRow = sqlx::query_as(SELECT_HOLDER)
                    .bind(link.block.as_str())
                    .bind(&link.external_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let holder = Link::try_from(holder)?;
                if holder.identity_id == link.identity_id {
                    report.kept += 1;
                } else {
                    report.conflicts.push((link.clone(), holder));
                }
            }
            report
        });
        Ok(report)
    }

    /// Removes every link, email, merge record, lookup and bookkeeping value.
    pub async fn clear(&self) -> Result<(), LinkError> {
        self.write_contents(&Contents::default(), true).await.map(|_| ())
    }

    /// Runs one statement on the underlying database (tests install failure triggers).
    #[cfg(test)]
    pub(crate) async fn execute_raw(&self, sql: &str) -> Result<(), LinkError> {
        self.ready().await?;
        on_pool!(self, pool => {
            sqlx::raw_sql(sql).execute(pool).await?;
        });
        Ok(())
    }

    /// Whether this index is on PostgreSQL.
    #[cfg(test)]
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.inner.pool, Pool::Postgres { .. })
    }
}

/// Schema names are put into SQL text, so only plain identifiers are accepted.
fn check_schema_name(schema: &str) -> Result<(), LinkError> {
    let mut chars = schema.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63;
    if plain {
        Ok(())
    } else {
        Err(LinkError::Location(format!(
            "schema name {schema:?} must be a lower-case identifier of at most 63 characters"
        )))
    }
}
