//! The audit trail: an append-only, hash-chained log with signed checkpoints.
//!
//! Entry `n` stores `hash_n = SHA-256("brr-audit-v1" ‖ seq ‖ at ‖ actor ‖ company ‖ source ‖ action ‖
//! target ‖ outcome ‖ details ‖ hash_{n-1})` (every field length-prefixed), with `hash_0` = 64 zeros.
//! Every `audit_checkpoint_every` entries an Ed25519 signature over `(seq, hash)` is stored in
//! `audit_checkpoints`. [`AuditLog::verify`] recomputes the chain and detects any edited, deleted,
//! inserted or reordered entry, and truncation up to the last checkpoint.

use std::sync::Arc;

use aws_lc_rs::signature::{self, KeyPair};
use brr_api::audit::{AuditEntry, AuditPage, AuditQuery, VerifyReport};
use sha2::{Digest, Sha256};

use crate::db::{Db, Engine};
use crate::error::{Error, Result};
use crate::keys::Keys;

/// The hash that precedes the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something to record. Never put secrets in any field.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// `user:<id>`, `agent:<id>`, `anonymous` or `system`.
    pub actor: String,
    /// Company concerned.
    pub company_id: Option<String>,
    /// Client address.
    pub source: String,
    /// Action name, e.g. `auth.login`.
    pub action: String,
    /// Object acted upon.
    pub target: String,
    /// `success`, `failure` or a short reason.
    pub outcome: String,
    /// Extra non-secret details.
    pub details: String,
}

/// The log.
pub struct AuditLog {
    db: Db,
    keys: Arc<Keys>,
    every: i64,
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("every", &self.every)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at: i64,
    actor: String,
    company_id: Option<String>,
    source: String,
    action: String,
    target: String,
    outcome: String,
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<Row> for AuditEntry {
    fn from(r: Row) -> Self {
        AuditEntry {
            seq: r.seq,
            at: r.at,
            actor: r.actor,
            company_id: r.company_id,
            source: r.source,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

const COLUMNS: &str =
    "seq, at, actor, company_id, source, action, target, outcome, details, prev_hash, hash";

/// The chain hash of an entry (its `hash` field is ignored).
pub fn entry_hash(e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    put("brr-audit-v1");
    put(&e.seq.to_string());
    put(&e.at.to_string());
    put(&e.actor);
    match &e.company_id {
        Some(c) => {
            put("1");
            put(c);
        }
        None => put("0"),
    }
    put(&e.source);
    put(&e.action);
    put(&e.target);
    put(&e.outcome);
    put(&e.details);
    put(&e.prev_hash);
    hex::encode(h.finalize())
}

fn checkpoint_message(seq: i64, hash: &str) -> Vec<u8> {
    format!("brr-audit-checkpoint-v1\n{seq}\n{hash}").into_bytes()
}

enum Param {
    I(i64),
    S(String),
}

impl AuditLog {
    /// A log over `db`, signing checkpoints with `keys.audit` every `every` entries.
    pub fn new(db: Db, keys: Arc<Keys>, every: i64) -> Self {
        AuditLog {
            db,
            keys,
            every: every.max(1),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Appends an entry at time `at` and returns its sequence number.
    pub async fn append(&self, at: i64, ev: AuditEvent) -> Result<i64> {
        let _guard = self.lock.lock().await;
        let mut last_err = None;
        for attempt in 0..20u64 {
            match self.try_append(at, &ev).await {
                Ok(seq) => return Ok(seq),
                Err(Error::Database(e)) => {
                    // Another node won the race for this sequence number: retry on the new head.
                    last_err = Some(e);
                    tokio::time::sleep(std::time::Duration::from_millis(2 + attempt * 5)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err
            .map(Error::Database)
            .unwrap_or_else(|| Error::internal("audit append")))
    }

    /// One attempt in one transaction. SQLite: `BEGIN IMMEDIATE` takes the write lock before reading
    /// the head, so concurrent writers wait (busy timeout) instead of failing on a stale snapshot.
    /// PostgreSQL: a concurrent append of the same sequence number fails on the primary key and is
    /// retried by [`AuditLog::append`].
    async fn try_append(&self, at: i64, ev: &AuditEvent) -> Result<i64> {
        match self.db.engine {
            Engine::Postgres => {
                let mut tx = self.db.pool.begin().await?;
                let seq = self.append_in(&mut tx, at, ev).await?;
                tx.commit().await?;
                Ok(seq)
            }
            Engine::Sqlite => {
                let mut conn = self.db.pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                match self.append_in(&mut conn, at, ev).await {
                    Ok(seq) => {
                        sqlx::query("COMMIT").execute(&mut *conn).await?;
                        Ok(seq)
                    }
                    Err(e) => {
                        if let Err(rb) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                            // Never hand a connection with an open transaction back to the pool.
                            conn.detach();
                            tracing::error!(error = %rb, "audit rollback failed");
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    async fn append_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        at: i64,
        ev: &AuditEvent,
    ) -> Result<i64> {
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (prev_seq, prev_hash) = last.unwrap_or((0, GENESIS.to_string()));
        let mut e = AuditEntry {
            seq: prev_seq + 1,
            at,
            actor: ev.actor.clone(),
            company_id: ev.company_id.clone(),
            source: ev.source.clone(),
            action: ev.action.clone(),
            target: ev.target.clone(),
            outcome: ev.outcome.clone(),
            details: ev.details.clone(),
            prev_hash,
            hash: String::new(),
        };
        e.hash = entry_hash(&e);
        sqlx::query(&format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(e.seq)
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.company_id)
        .bind(&e.source)
        .bind(&e.action)
        .bind(&e.target)
        .bind(&e.outcome)
        .bind(&e.details)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(&mut *tx)
        .await?;
        if e.seq % self.every == 0 {
            let sig = self.keys.audit.sign(&checkpoint_message(e.seq, &e.hash));
            sqlx::query(
                "INSERT INTO audit_checkpoints (seq, at, hash, signature) VALUES ($1, $2, $3, $4)",
            )
            .bind(e.seq)
            .bind(at)
            .bind(&e.hash)
            .bind(hex::encode(sig.as_ref()))
            .execute(&mut *tx)
            .await?;
        }
        tracing::info!(target: "audit", seq = e.seq, action = %e.action, actor = %e.actor, outcome = %e.outcome, "audit");
        Ok(e.seq)
    }

    /// Recomputes the whole chain and every checkpoint signature.
    pub async fn verify(&self) -> Result<VerifyReport> {
        let public = self.keys.audit.public_key().as_ref().to_vec();
        let verifier = signature::UnparsedPublicKey::new(&signature::ED25519, public);
        let cps: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, hash, signature FROM audit_checkpoints ORDER BY seq")
                .fetch_all(&self.db.pool)
                .await?;
        let mut problems = Vec::new();
        let mut cp_by_seq = std::collections::BTreeMap::new();
        for (seq, hash, sig) in &cps {
            let ok = hex::decode(sig)
                .ok()
                .is_some_and(|s| verifier.verify(&checkpoint_message(*seq, hash), &s).is_ok());
            if !ok {
                problems.push(format!("checkpoint {seq}: bad signature"));
            }
            cp_by_seq.insert(*seq, hash.clone());
        }
        let mut prev_seq = 0i64;
        let mut prev_hash = GENESIS.to_string();
        let mut count = 0i64;
        loop {
            let rows: Vec<Row> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1000"
            ))
            .bind(prev_seq)
            .fetch_all(&self.db.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let e = AuditEntry::from(r);
                count += 1;
                if e.seq != prev_seq + 1 {
                    problems.push(format!(
                        "entries {}..{} are missing",
                        prev_seq + 1,
                        e.seq - 1
                    ));
                }
                if e.prev_hash != prev_hash {
                    problems.push(format!(
                        "entry {}: does not follow entry {prev_seq} (deleted or reordered)",
                        e.seq
                    ));
                }
                if entry_hash(&e) != e.hash {
                    problems.push(format!("entry {}: content was altered", e.seq));
                }
                match cp_by_seq.get(&e.seq) {
                    Some(h) if *h != e.hash => problems.push(format!(
                        "entry {}: differs from its signed checkpoint",
                        e.seq
                    )),
                    None if e.seq % self.every == 0 => {
                        problems.push(format!("checkpoint {} is missing", e.seq))
                    }
                    _ => {}
                }
                prev_seq = e.seq;
                prev_hash = e.hash;
            }
        }
        if let Some((&last_cp, _)) = cp_by_seq.iter().next_back()
            && last_cp > prev_seq
        {
            problems.push(format!(
                "log truncated: checkpoint {last_cp} is beyond the last entry {prev_seq}"
            ));
        }
        problems.truncate(1000);
        Ok(VerifyReport {
            ok: problems.is_empty(),
            entries: count,
            checkpoints: cps.len() as i64,
            problems,
        })
    }

    /// One page of entries matching `q`; `forced_company` restricts to one company whatever `q` says.
    pub async fn query(&self, q: &AuditQuery, forced_company: Option<&str>) -> Result<AuditPage> {
        let limit = q.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(Error::invalid("limit must be 1..=500"));
        }
        let mut clauses = vec!["seq > $1".to_string()];
        let mut params = vec![Param::I(q.after.unwrap_or(0))];
        let mut add = |clause: &str, p: Param| {
            params.push(p);
            clauses.push(format!("{clause} ${}", params.len()));
        };
        if let Some(v) = q.from {
            add("at >=", Param::I(v));
        }
        if let Some(v) = q.to {
            add("at <", Param::I(v));
        }
        if let Some(v) = &q.actor {
            add("actor =", Param::S(v.clone()));
        }
        if let Some(v) = &q.action {
            add("action =", Param::S(v.clone()));
        }
        if let Some(c) = forced_company {
            if q.company_id.as_deref().is_some_and(|v| v != c) {
                return Ok(AuditPage {
                    entries: Vec::new(),
                    next_after: None,
                });
            }
            add("company_id =", Param::S(c.to_string()));
        } else if let Some(v) = &q.company_id {
            add("company_id =", Param::S(v.clone()));
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY seq LIMIT {}",
            clauses.join(" AND "),
            limit + 1
        );
        let mut query = sqlx::query_as::<_, Row>(&sql);
        for p in params {
            query = match p {
                Param::I(i) => query.bind(i),
                Param::S(s) => query.bind(s),
            };
        }
        let mut entries: Vec<AuditEntry> = query
            .fetch_all(&self.db.pool)
            .await?
            .into_iter()
            .map(AuditEntry::from)
            .collect();
        let next_after = if entries.len() as i64 > limit {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            next_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuditEntry {
        AuditEntry {
            seq: 1,
            at: 5,
            actor: "user:a".into(),
            company_id: None,
            source: "127.0.0.1".into(),
            action: "auth.login".into(),
            target: "user:a".into(),
            outcome: "success".into(),
            details: String::new(),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn every_field_is_committed() {
        let base = entry_hash(&sample());
        type Mutation = Box<dyn Fn(&mut AuditEntry)>;
        let variants: Vec<Mutation> = vec![
            Box::new(|e| e.seq = 2),
            Box::new(|e| e.at = 6),
            Box::new(|e| e.actor = "user:b".into()),
            Box::new(|e| e.company_id = Some(String::new())),
            Box::new(|e| e.source = "::1".into()),
            Box::new(|e| e.action = "auth.logout".into()),
            Box::new(|e| e.target = "x".into()),
            Box::new(|e| e.outcome = "failure".into()),
            Box::new(|e| e.details = "d".into()),
            Box::new(|e| e.prev_hash = "1".repeat(64)),
        ];
        for change in variants {
            let mut e = sample();
            change(&mut e);
            assert_ne!(entry_hash(&e), base);
        }
    }
}
