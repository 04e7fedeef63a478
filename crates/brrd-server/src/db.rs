//! The database handle: one [`sqlx::AnyPool`] over SQLite or PostgreSQL, with the same migrations.
//!
//! Queries use only `TEXT`/`BIGINT` columns and `$n` placeholders, which both engines accept, so
//! the domain code is written once.

use sqlx::any::{AnyPoolOptions, install_default_drivers};

use crate::error::Result;

/// The migrations embedded in the binary (`crates/brrd-server/migrations`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Set on every SQLite connection: statement journals in memory, and up to 32 MiB of page cache
/// per connection (SQLite's default is 2 MiB).
const SQLITE_CONNECTION_PRAGMAS: &str = "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -32768;";

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection pool plus the engine it talks to.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool.
    pub pool: sqlx::AnyPool,
    /// The engine.
    pub engine: Engine,
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        install_default_drivers();
        let engine = if url.starts_with("postgres") {
            Engine::Postgres
        } else {
            Engine::Sqlite
        };
        let max = match engine {
            Engine::Sqlite => 4,
            Engine::Postgres => 16,
        };
        let mut options = AnyPoolOptions::new().max_connections(max);
        if engine == Engine::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Statement journals (every multi-row `INSERT … ON CONFLICT` writes one) in
                    // memory instead of a temporary file, and a page cache that holds the blob
                    // indexes of a busy repository: together they cut the database's CPU time per
                    // recorded pack by more than half.
                    sqlx::query(SQLITE_CONNECTION_PRAGMAS).execute(conn).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        if engine == Engine::Sqlite {
            // Persistent for the file: readers do not block the writer.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATOR.run(&pool).await?;
        Ok(Db { pool, engine })
    }

    /// Cheap liveness probe for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pooled SQLite connection gets the pragmas (both statements of the string run).
    #[tokio::test]
    async fn sqlite_connections_keep_statement_journals_in_memory_with_a_larger_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", tmp.path().join("db").display());
        let db = Db::connect(&url).await.unwrap();
        let mut conns = Vec::new();
        for _ in 0..3 {
            let mut conn = db.pool.acquire().await.unwrap();
            let (temp_store,): (i64,) = sqlx::query_as("PRAGMA temp_store")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!((temp_store, cache), (2, -32768));
            conns.push(conn);
        }
    }

    /// Migration 0008 keeps every blob row recorded before it, with its key.
    #[tokio::test]
    async fn blob_rows_survive_the_move_to_pack_order() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("migrations");
        std::fs::create_dir(&old).unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.as_str() < "0008" {
                std::fs::copy(&path, old.join(&name)).unwrap();
            }
        }
        install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", tmp.path().join("db").display());
        let pool = AnyPoolOptions::new().connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let blob = "ab".repeat(32);
        for (repo, pack) in [("r1", "p1"), ("r1", "p2"), ("r2", "p1")] {
            sqlx::query("INSERT INTO repo_blobs (repo_id, blob_id, pack_id, blob_type, blob_offset, stored_len) VALUES ($1, $2, $3, 'data', 0, 7)")
                .bind(repo)
                .bind(&blob)
                .bind(pack)
                .execute(&pool)
                .await
                .unwrap();
        }
        MIGRATOR.run(&pool).await.unwrap();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT repo_id, pack_id, blob_key FROM repo_blobs WHERE blob_key = $1 AND blob_id = $2 ORDER BY repo_id, pack_id",
        )
        .bind(&blob[..16])
        .bind(&blob)
        .fetch_all(&pool)
        .await
        .unwrap();
        let want: Vec<(String, String, String)> = [("r1", "p1"), ("r1", "p2"), ("r2", "p1")]
            .iter()
            .map(|(r, p)| (r.to_string(), p.to_string(), blob[..16].to_string()))
            .collect();
        assert_eq!(rows, want);
    }
}
