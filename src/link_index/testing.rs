//! Test support: a throw-away index on each backend, for the store tests and the
//! integration tests. SQLite always (a temporary file); PostgreSQL when `DATABASE_URL` is
//! set, in a schema of its own so parallel tests never meet. Without `DATABASE_URL` the
//! PostgreSQL tests say loudly that they were skipped, and fail when `CI` is set.

use std::{io::Write, path::PathBuf, str::FromStr};

use secrecy::{ExposeSecret, SecretString};
use sqlx::{Connection, postgres::PgConnectOptions};

use super::{LinkIndex, LinkIndexLocation};

/// A throw-away index location, removed by [`TestIndex::cleanup`] (SQLite files also on drop).
pub struct TestIndex {
    /// Where the index lives.
    pub location: LinkIndexLocation,
    sqlite_file: Option<PathBuf>,
}

impl TestIndex {
    /// A fresh SQLite file in the temporary directory.
    pub fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("blocks-gateway-links-{}.sqlite", uuid::Uuid::new_v4()));
        Self {
            location: LinkIndexLocation::Sqlite(path.clone()),
            sqlite_file: Some(path),
        }
    }

    /// A fresh schema in the `DATABASE_URL` database; `None` (after a loud notice on
    /// stderr) when the variable is unset. Panics when `CI` is set and it is not.
    pub fn postgres() -> Option<Self> {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but DATABASE_URL is not: the PostgreSQL link-index tests must run in CI"
            );
            // Straight to stderr, past the test harness's capture, so nobody misses it.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PostgreSQL link-index tests did not run (DATABASE_URL unset)"
            );
            return None;
        };
        let schema = format!("links_test_{}", uuid::Uuid::new_v4().simple());
        Some(Self {
            location: LinkIndexLocation::Postgres {
                url: SecretString::from(url),
                schema: Some(schema),
            },
            sqlite_file: None,
        })
    }

    /// Opens the index (lazily, like the gateway does).
    pub fn open(&self) -> LinkIndex {
        LinkIndex::open(&self.location).expect("test index location is valid")
    }

    /// Deletes the index: the SQLite files, or the PostgreSQL schema and its tables.
    pub async fn cleanup(&self) {
        if let LinkIndexLocation::Postgres {
            url,
            schema: Some(schema),
        } = &self.location
        {
            let options = PgConnectOptions::from_str(url.expose_secret()).expect("DATABASE_URL parses");
            let mut connection = sqlx::PgConnection::connect_with(&options)
                .await
                .expect("PostgreSQL reachable");
            let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::raw_sql(&drop)
                .execute(&mut connection)
                .await
                .expect("schema dropped");
        }
        self.remove_sqlite_files();
    }

    fn remove_sqlite_files(&self) {
        if let Some(path) = &self.sqlite_file {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

impl Drop for TestIndex {
    fn drop(&mut self) {
        self.remove_sqlite_files();
    }
}

/// Runs each named scenario (`async fn name(db: &TestIndex)`, in the calling module) once
/// per backend, as the tests `sqlite::name` and `postgres::name`; the PostgreSQL ones
/// return early (loudly) without `DATABASE_URL`.
#[macro_export]
macro_rules! on_both_link_index_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = $crate::link_index::testing::TestIndex::sqlite();
                    super::$scenario(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(db) = $crate::link_index::testing::TestIndex::postgres() else { return };
                    super::$scenario(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}
