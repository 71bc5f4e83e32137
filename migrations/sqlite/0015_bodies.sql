-- Bodies kept out of Kafka records (a source's `large_bodies`): ingest
-- writes one here before it publishes the record, keyed by the event id, so
-- the row may exist before (or, when the publish failed, without) the event.
-- `received_at` (microseconds since the Unix epoch) lets retention delete
-- bodies with their events, and bodies whose event was never published.
CREATE TABLE bodies (
    event_id    TEXT    NOT NULL PRIMARY KEY,
    received_at INTEGER NOT NULL,
    sha256      BLOB    NOT NULL,
    body        BLOB    NOT NULL
);

CREATE INDEX bodies_by_time ON bodies (received_at);
