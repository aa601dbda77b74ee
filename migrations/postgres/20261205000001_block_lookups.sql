-- Lookups the blocks cannot answer by key, kept beside the links. Derived data like the
-- rest: `blocks-gateway reindex` fills them, the gateway's own writes keep them fresh, and
-- every use checks the block's answer (a wrong entry is repaired, never trusted).

-- Where a Sales entity sits in the entities list (Sales reads no entity by id): the page
-- at `page_size` records a page; NULL when the gateway registered it and has not seen
-- its place yet (new entities are looked for on the last page).
CREATE TABLE sales_entity_positions (
    entity_id TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (entity_id <> ''),
    page      BIGINT CHECK (page > 0),
    page_size BIGINT NOT NULL CHECK (page_size > 0)
);

-- B2B users by exact email, lower-cased (B2B filters emails by substring only).
CREATE TABLE b2b_user_emails (
    email   TEXT COLLATE "C" NOT NULL PRIMARY KEY CHECK (email <> ''),
    user_id BIGINT NOT NULL
);
