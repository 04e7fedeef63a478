-- Which packs each stored index file lists. A blob look-up (docs/server-repositories.md §3) answers
-- true only for blobs of a pack that a stored index file lists: a pack stored while no index names it
-- yet (a backup in progress, or one that died) must not be deduplicated against, or a client would
-- commit a snapshot whose blob no index locates for a restore. Filled when an index file is recorded,
-- removed with it, rebuilt by `brrd repo reindex` (repositories recorded before this migration answer
-- look-ups with false until they are reindexed: clients upload again, nothing is lost).
CREATE TABLE repo_index_packs (
    repo_id TEXT NOT NULL,
    index_id TEXT NOT NULL,
    pack_id TEXT NOT NULL,
    PRIMARY KEY (repo_id, index_id, pack_id)
);
CREATE INDEX repo_index_packs_pack ON repo_index_packs(repo_id, pack_id);
