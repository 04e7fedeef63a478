-- The newest snapshot per source tag (repository usage) without scanning every snapshot of the
-- repository for each one.
CREATE INDEX repo_snapshots_source ON repo_snapshots(repo_id, source, time);
