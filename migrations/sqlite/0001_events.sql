-- hookgate history store (SQLite): one row per indexed webhook event.
-- Times are microseconds since the Unix epoch (UTC). `headers` is a JSON
-- array of {"name","value"} objects, or {"name","value_base64"} when the
-- value is not UTF-8. Kafka provenance is where the indexer first read it.
CREATE TABLE events (
    id                  TEXT    NOT NULL PRIMARY KEY,
    source              TEXT    NOT NULL,
    event_type          TEXT,
    received_at         INTEGER NOT NULL,
    dedup_key           TEXT,
    verified            BOOLEAN NOT NULL,
    verification_scheme TEXT    NOT NULL,
    secret_index        INTEGER NOT NULL,
    content_type        TEXT    NOT NULL,
    method              TEXT    NOT NULL,
    path                TEXT    NOT NULL,
    query               TEXT    NOT NULL,
    client_addr         TEXT    NOT NULL,
    headers             TEXT    NOT NULL,
    body                BLOB    NOT NULL,
    body_size           INTEGER NOT NULL,
    kafka_topic         TEXT    NOT NULL,
    kafka_partition     INTEGER NOT NULL,
    kafka_offset        INTEGER NOT NULL,
    indexed_at          INTEGER NOT NULL
);

-- Newest first, keyset pagination on (received_at, id); also serves retention.
CREATE INDEX events_by_time ON events (received_at DESC, id DESC);
CREATE INDEX events_by_source ON events (source, received_at DESC, id DESC);
CREATE INDEX events_by_type ON events (event_type, received_at DESC, id DESC);
CREATE INDEX events_by_dedup_key ON events (dedup_key);
