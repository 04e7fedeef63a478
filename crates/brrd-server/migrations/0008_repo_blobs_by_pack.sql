-- The blob record re-keyed for cheap writes. Before, every row went into two indexes ordered by blob ID
-- (random) with three long text keys each, so recording one pack of a few thousand blobs dirtied pages
-- all over both; now the rows of one pack are neighbours in the primary key (pack first), and the one
-- index in blob order holds only `blob_key`, the first 16 hex digits of the blob ID. Look-ups by blob
-- ask `blob_key IN (…)` together with the exact `blob_id IN (…)` and the repository.
CREATE TABLE repo_blobs_by_pack (
    repo_id TEXT NOT NULL,
    pack_id TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    blob_key TEXT NOT NULL,
    blob_type TEXT NOT NULL,
    blob_offset BIGINT NOT NULL,
    stored_len BIGINT NOT NULL,
    PRIMARY KEY (pack_id, repo_id, blob_id)
);
INSERT INTO repo_blobs_by_pack (repo_id, pack_id, blob_id, blob_key, blob_type, blob_offset, stored_len)
    SELECT repo_id, pack_id, blob_id, substr(blob_id, 1, 16), blob_type, blob_offset, stored_len FROM repo_blobs;
DROP TABLE repo_blobs;
ALTER TABLE repo_blobs_by_pack RENAME TO repo_blobs;
CREATE INDEX repo_blobs_key ON repo_blobs(blob_key);
