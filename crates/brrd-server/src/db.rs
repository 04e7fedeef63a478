//! The database handle: one [`sqlx::AnyPool`] over SQLite or PostgreSQL, with the same migrations.
//!
//! Queries use only `TEXT`/`BIGINT` columns and `$n` placeholders, which both engines accept, so
//! the domain code is written once.

use sqlx::any::{AnyPoolOptions, install_default_drivers};

use crate::error::Result;

/// The migrations embedded in the binary (`crates/brrd-server/migrations`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .connect(url)
            .await?;
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
