-- Exact snapshot quotas and failed-backup accounting (docs/server-repositories.md §3 "Quota accounting", §5).

-- A snapshot upload between its quota check and its record: it counts against the company's snapshot
-- quota until `repo_snapshots` holds the snapshot (then the record counts instead) or the upload ends
-- without it (the row is removed). Rows older than an upload can take are ignored and purged.
CREATE TABLE quota_reservations (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL,
    repo_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX quota_reservations_company ON quota_reservations(company_id);

-- A backup session: a shared lock with purpose "backup" (cleartext in the lock file), from the first
-- time brrd stored it until it was deleted or not uploaded again for `session_timeout_secs`.
-- `outcome`: NULL while open, then `completed` (a snapshot of the same principal was recorded since
-- `started_at`) or `failed`.
CREATE TABLE repo_backup_sessions (
    repo_id TEXT NOT NULL,
    lock_name TEXT NOT NULL,
    company_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    hostname TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    outcome TEXT,
    PRIMARY KEY (repo_id, lock_name)
);
CREATE INDEX repo_backup_sessions_open ON repo_backup_sessions(ended_at);

-- Every failed backup: `reason` is `expired`, `ended_without_snapshot`, `missing_blobs` or
-- `quota_exceeded`; `hostname` is '' when no backup lock of the uploader was open.
CREATE TABLE backup_failures (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL,
    repo_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    principal TEXT NOT NULL,
    hostname TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX backup_failures_company ON backup_failures(company_id, at);
