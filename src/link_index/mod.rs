//! The identity link index: which CRM person and which B2B user belong to which identity.
//!
//! The CRM cannot be searched by `unique_id` or email, and a B2B user's email may differ from
//! the identity's, so the gateway keeps links (identity id, block, external id, how the link
//! was made, when), the email each identity was registered or linked with, and which CRM
//! persons were merged into which. It is derived data: [`reindex`] rebuilds what the blocks
//! can prove, and [`LinkIndex::export`] / [`LinkIndex::import`] carry the rest (explicit
//! links, merges) as JSON lines.
//!
//! One [`LinkIndex`] type over two backends with the same SQL: an embedded SQLite file by
//! default, PostgreSQL when `DATABASE_URL` is set. It is an enum over the two typed pools
//! rather than sqlx's `Any` driver: `Any` cannot carry timestamps and would erase the
//! per-backend migrations; the enum keeps both typed while every query is written once.

mod exchange;
pub mod loader;
mod lookups;
pub mod reindex;
mod store;
pub mod testing;
#[cfg(test)]
mod tests;

use std::{fmt, path::PathBuf, str::FromStr};

use chrono::{DateTime, SubsecRound, Utc};
use secrecy::SecretString;

pub use exchange::ImportReport;
pub use loader::{IdentityLinksKey, LinkHolderKey, LinkLoader, LinkLoaders, SurvivorKey};
pub use lookups::EntityPosition;
pub use reindex::{ReindexOptions, ReindexProgress, ReindexReport, reindex};
pub use store::{Contents, EmailRecord, LinkIndex, MergeRecord};

/// Default SQLite file of the index, relative to the working directory.
pub const DEFAULT_SQLITE_FILE: &str = "blocks-gateway-links.sqlite";

/// Where the index lives.
#[derive(Clone)]
pub enum LinkIndexLocation {
    /// An SQLite file, created with its schema on first use (`LINK_INDEX_PATH`).
    Sqlite(PathBuf),
    /// An SQLite database in memory, lost when the process ends (tests, throw-away runs).
    Memory,
    /// A PostgreSQL database (`DATABASE_URL`); the URL may hold a password.
    Postgres {
        /// The connection URL.
        url: SecretString,
        /// A schema to keep the tables in, created when missing (tests use one each);
        /// `None` uses the connection's default `search_path`.
        schema: Option<String>,
    },
}

impl fmt::Debug for LinkIndexLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Memory => f.write_str("Memory"),
            Self::Postgres { schema, .. } => f
                .debug_struct("Postgres")
                .field("url", &"[REDACTED]")
                .field("schema", schema)
                .finish(),
        }
    }
}

impl LinkIndexLocation {
    /// A short description for logs and messages, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("SQLite file {}", path.display()),
            Self::Memory => "SQLite in memory".to_owned(),
            Self::Postgres {
                schema: Some(schema), ..
            } => format!("PostgreSQL (DATABASE_URL), schema {schema}"),
            Self::Postgres { schema: None, .. } => "PostgreSQL (DATABASE_URL)".to_owned(),
        }
    }
}

/// Why the index could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The location is not usable (a malformed URL or schema name).
    #[error("identity link index: {0}")]
    Location(String),
    /// Creating or upgrading the tables failed.
    #[error("identity link index: migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database failed (unreachable, locked, constraint).
    #[error("identity link index: database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value is outside its set (edited by hand?).
    #[error("identity link index: stored {what} {value:?} is not valid")]
    Corrupt {
        /// The column.
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// An import line is not a valid record; nothing was imported.
    #[error("identity link index: import line {line}: {reason}")]
    Import {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading an import or writing an export failed.
    #[error("identity link index: {0}")]
    Io(#[from] std::io::Error),
}

/// The blocks whose records an identity is linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkBlock {
    /// A CRM person (external id: the person UUID).
    Crm,
    /// A B2B user (external id: the integer user id in decimal).
    B2b,
}

impl LinkBlock {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crm => "crm",
            Self::B2b => "b2b",
        }
    }
}

impl FromStr for LinkBlock {
    type Err = LinkError;

    fn from_str(value: &str) -> Result<Self, LinkError> {
        match value {
            "crm" => Ok(Self::Crm),
            "b2b" => Ok(Self::B2b),
            _ => Err(LinkError::Corrupt {
                what: "block",
                value: value.to_owned(),
            }),
        }
    }
}

/// How a link was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkSource {
    /// By `registerIdentity`, which created the record with the identity id.
    Registered,
    /// By the `linkIdentity` mutation (or an import of such a link).
    Explicit,
    /// Moved onto the survivor by `mergePersons`.
    Merged,
    /// Proven from the blocks by `blocks-gateway reindex`.
    Reindex,
}

impl LinkSource {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Explicit => "explicit",
            Self::Merged => "merged",
            Self::Reindex => "reindex",
        }
    }
}

impl FromStr for LinkSource {
    type Err = LinkError;

    fn from_str(value: &str) -> Result<Self, LinkError> {
        match value {
            "registered" => Ok(Self::Registered),
            "explicit" => Ok(Self::Explicit),
            "merged" => Ok(Self::Merged),
            "reindex" => Ok(Self::Reindex),
            _ => Err(LinkError::Corrupt {
                what: "source",
                value: value.to_owned(),
            }),
        }
    }
}

/// One link: an identity owns a record in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The identity (the shared 23blocks `unique_id`).
    pub identity_id: String,
    /// The block of the record.
    pub block: LinkBlock,
    /// The record's id in that block.
    pub external_id: String,
    /// How the link was made.
    pub source: LinkSource,
    /// When the link was made (microsecond precision, so it survives both backends).
    pub created_at: DateTime<Utc>,
}

/// A link to write.
#[derive(Debug, Clone, Copy)]
pub struct NewLink<'a> {
    /// The identity.
    pub identity_id: &'a str,
    /// The block of the record.
    pub block: LinkBlock,
    /// The record's id in that block.
    pub external_id: &'a str,
    /// How the link is made.
    pub source: LinkSource,
    /// The identity's email, when known: kept lower-cased for `identityByEmail`.
    pub email: Option<&'a str>,
}

/// What adding a link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The link is new.
    Added(Link),
    /// The same identity already held the record; the stored link is unchanged.
    Kept(Link),
    /// Another identity holds the record; nothing was written.
    Conflict {
        /// The link that holds the record.
        held_by: Link,
    },
}

/// What moving the links of merged persons onto the survivor did (or, from
/// [`LinkIndex::plan_merge`], would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Links moved from a merged person to the survivor: (the link as the merged person
    /// held it, the link as the survivor holds it afterwards).
    pub moved: Vec<(Link, Link)>,
    /// Links of merged persons dropped because the same identity already held the survivor.
    pub dropped: Vec<Link>,
    /// Links left on a merged person because another identity holds the survivor; the
    /// merged person still leads to the survivor through its merge record.
    pub conflicts: Vec<(Link, Link)>,
}

/// Decides what a merge does with the CRM links of the merged persons, given the link
/// holding the survivor and the links holding the duplicates, in merge order: the first
/// link reaching a free survivor moves onto it; a link of the identity that then holds the
/// survivor is dropped; a link of any other identity stays where it is (a conflict). The
/// one rule behind [`LinkIndex::merge`] and its preview, [`LinkIndex::plan_merge`].
pub fn plan_merge_links(
    primary: &str,
    primary_holder: Option<Link>,
    duplicate_holders: impl IntoIterator<Item = Link>,
    at: DateTime<Utc>,
) -> MergeReport {
    let mut report = MergeReport::default();
    let mut on_primary = primary_holder;
    for held in duplicate_holders {
        match &on_primary {
            None => {
                let moved = Link {
                    external_id: primary.to_owned(),
                    source: LinkSource::Merged,
                    created_at: at,
                    ..held.clone()
                };
                on_primary = Some(moved.clone());
                report.moved.push((held, moved));
            }
            Some(holder) if holder.identity_id == held.identity_id => report.dropped.push(held),
            Some(holder) => report.conflicts.push((held, holder.clone())),
        }
    }
    report
}

/// The current time as the index stores it: UTC, whole microseconds (PostgreSQL's precision).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// An email as the index keeps it: trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A CRM person id as the index keys it: the UUID in lower-case hyphenated form (the CRM's
/// own spelling; other spellings of the same UUID must find the same links).
pub fn canonical_person_id(id: &str) -> String {
    let id = id.trim();
    uuid::Uuid::parse_str(id).map_or_else(|_| id.to_owned(), |uuid| uuid.hyphenated().to_string())
}
