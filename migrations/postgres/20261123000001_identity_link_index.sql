-- The identity link index (PostgreSQL). Derived data: `blocks-gateway reindex` rebuilds it.
-- Text columns collate "C" so that ORDER BY sorts by bytes, exactly like SQLite: an
-- export is the same file whichever backend wrote it.

-- One row per link; (block, external_id) is the key, so a CRM person or a B2B user
-- belongs to at most one identity.
CREATE TABLE identity_links (
    block       TEXT COLLATE "C" NOT NULL CHECK (block IN ('crm', 'b2b')),
    external_id TEXT COLLATE "C" NOT NULL CHECK (external_id <> ''),
    identity_id TEXT COLLATE "C" NOT NULL CHECK (identity_id <> ''),
    source      TEXT COLLATE "C" NOT NULL CHECK (source IN ('registered', 'explicit', 'merged', 'reindex')),
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (block, external_id)
);
CREATE INDEX identity_links_by_identity ON identity_links (identity_id, block, external_id);

-- The email an identity was registered or linked with, lower-cased (`identityByEmail`).
CREATE TABLE identity_emails (
    identity_id TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (identity_id <> ''),
    email       TEXT COLLATE "C" NOT NULL CHECK (email <> '')
);
CREATE INDEX identity_emails_by_email ON identity_emails (email);

-- CRM persons merged into another: merged person -> survivor (chains are kept flat).
CREATE TABLE person_merges (
    person_id   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    survivor_id TEXT COLLATE "C" NOT NULL,
    merged_at   TIMESTAMPTZ NOT NULL,
    CHECK (person_id <> survivor_id)
);
CREATE INDEX person_merges_by_survivor ON person_merges (survivor_id);

-- The index's own bookkeeping (the reindex's resume points).
CREATE TABLE link_index_meta (
    key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
