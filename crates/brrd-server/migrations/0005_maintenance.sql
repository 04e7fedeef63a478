-- Server-side maintenance without the key (docs/server-repositories.md §4): retention policies,
-- snapshots marked for deletion in append-only repositories, and when each job last ran.

-- A retention policy of a repository: `source` = '' for the repository's own policy, or a source tag
-- whose snapshots follow this policy instead. Counts are NULL when the rule is not used.
CREATE TABLE repo_retention (
    repo_id TEXT NOT NULL REFERENCES repositories(id),
    source TEXT NOT NULL,
    grouped_by TEXT NOT NULL,
    keep_last BIGINT,
    keep_hourly BIGINT,
    keep_daily BIGINT,
    keep_weekly BIGINT,
    keep_monthly BIGINT,
    keep_yearly BIGINT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (repo_id, source)
);

-- Snapshots that retention selected in an append-only repository: deleted once
-- `delete_delay_secs` has passed since `marked_at` (and still selected then).
CREATE TABLE repo_retention_marks (
    repo_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    marked_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, snapshot_id)
);

-- When each scheduled job (`retention`, `gc`, `verify`) last ran on a repository, and how it ended.
CREATE TABLE repo_maintenance (
    repo_id TEXT NOT NULL,
    job TEXT NOT NULL,
    last_run_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (repo_id, job)
);
