-- Repositories stored for companies, what the server learns from their cleartext parts, enrolled agents
-- and per-company quotas. Portable like 0001: TEXT and BIGINT only; times are Unix milliseconds;
-- booleans are 0/1; blob, pack and file names are lower-case hex as in the store.
CREATE TABLE repositories (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies(id),
    name TEXT NOT NULL,
    append_only BIGINT NOT NULL,
    -- When a requested end of append-only takes effect (NULL: none pending).
    append_only_ends_at BIGINT,
    delete_delay_secs BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (company_id, name)
);

CREATE TABLE repo_packs (
    repo_id TEXT NOT NULL REFERENCES repositories(id),
    pack_id TEXT NOT NULL,
    size BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, pack_id)
);

-- The trailer of each stored pack: one row per blob.
CREATE TABLE repo_blobs (
    repo_id TEXT NOT NULL,
    blob_id TEXT NOT NULL,
    pack_id TEXT NOT NULL,
    blob_type TEXT NOT NULL,
    blob_offset BIGINT NOT NULL,
    stored_len BIGINT NOT NULL,
    PRIMARY KEY (repo_id, blob_id, pack_id)
);
CREATE INDEX repo_blobs_pack ON repo_blobs(repo_id, pack_id);

CREATE TABLE repo_snapshots (
    repo_id TEXT NOT NULL REFERENCES repositories(id),
    snapshot_id TEXT NOT NULL,
    -- Header time, Unix ms.
    time BIGINT NOT NULL,
    source TEXT NOT NULL,
    ref_count BIGINT NOT NULL,
    -- Sum of the stored lengths of the referenced blobs (plaintext sizes are unknown to the server).
    size BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, snapshot_id)
);

-- Every other stored file (config, keys, index, snapshots, locks, gc) with its size, for usage and quotas.
CREATE TABLE repo_files (
    repo_id TEXT NOT NULL REFERENCES repositories(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, kind, name)
);

-- Which index files each stored index file supersedes.
CREATE TABLE repo_supersedes (
    repo_id TEXT NOT NULL,
    index_id TEXT NOT NULL,
    superseded_id TEXT NOT NULL,
    PRIMARY KEY (repo_id, index_id, superseded_id)
);
CREATE INDEX repo_supersedes_old ON repo_supersedes(repo_id, superseded_id);

-- Packs condemned by each stored GC record.
CREATE TABLE repo_condemned (
    repo_id TEXT NOT NULL,
    gc_name TEXT NOT NULL,
    pack_id TEXT NOT NULL,
    PRIMARY KEY (repo_id, gc_name, pack_id)
);
CREATE INDEX repo_condemned_pack ON repo_condemned(repo_id, pack_id);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    company_id TEXT NOT NULL REFERENCES companies(id),
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    api_key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX agents_company ON agents(company_id);

CREATE TABLE company_quotas (
    company_id TEXT PRIMARY KEY REFERENCES companies(id),
    max_stored_bytes BIGINT,
    max_snapshots BIGINT,
    max_agents BIGINT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
