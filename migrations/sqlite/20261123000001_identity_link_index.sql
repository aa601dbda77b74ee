-- The identity link index (SQLite). Derived data: `blocks-gateway reindex` rebuilds it.
-- Timestamps are RFC 3339 text in UTC, microsecond precision.

-- One row per link; (block, external_id) is the key, so a CRM person or a B2B user
-- belongs to at most one identity.
CREATE TABLE identity_links (
    block       TEXT NOT NULL CHECK (block IN ('crm', 'b2b')),
    external_id TEXT NOT NULL CHECK (external_id <> ''),
    identity_id TEXT NOT NULL CHECK (identity_id <> ''),
    source      TEXT NOT NULL CHECK (source IN ('registered', 'explicit', 'merged', 'reindex')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (block, external_id)
);
CREATE INDEX identity_links_by_identity ON identity_links (identity_id, block, external_id);

-- The email an identity was registered or linked with, lower-cased (`identityByEmail`).
CREATE TABLE identity_emails (
    identity_id TEXT NOT NULL PRIMARY KEY CHECK (identity_id <> ''),
    email       TEXT NOT NULL CHECK (email <> '')
);
CREATE INDEX identity_emails_by_email ON identity_emails (email);

-- CRM persons merged into another: merged person -> survivor (chains are kept flat).
CREATE TABLE person_merges (
    person_id   TEXT NOT NULL PRIMARY KEY,
    survivor_id TEXT NOT NULL,
    merged_at   TEXT NOT NULL,
    CHECK (person_id <> survivor_id)
);
CREATE INDEX person_merges_by_survivor ON person_merges (survivor_id);

-- The index's own bookkeeping (the reindex's resume points).
CREATE TABLE link_index_meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
