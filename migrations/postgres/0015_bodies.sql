-- Bodies kept out of Kafka records (a source's `large_bodies`): ingest
-- writes one here before it publishes the record, keyed by the event id, so
-- the row may exist before (or, when the publish failed, without) the event.
-- `received_at` (microseconds since the Unix epoch) lets retention delete
-- bodies with their events, and bodies whose event was never published.
CREATE TABLE bodies (
    event_id    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    sha256      BYTEA  NOT NULL,
    body        BYTEA  NOT NULL
);

CREATE INDEX bodies_by_time ON bodies (received_at);
