-- Bulk replay jobs (POST /v1/replays). The job's filter and its progress
-- live here so that a job outlives the query replica that started it: a
-- replica claims a job by taking its lease, publishes the matching events
-- oldest first, and records after each acknowledged event the position
-- (received_at, id) it has reached. Another replica (or the same one after
-- a restart) takes over a job whose lease has expired and continues after
-- that position.
CREATE TABLE replay_jobs (
    id           TEXT    NOT NULL PRIMARY KEY,
    state        TEXT    NOT NULL,
    filter       TEXT    NOT NULL,
    topic        TEXT,
    rate         INTEGER NOT NULL,
    matched      INTEGER NOT NULL,
    published    INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    after_at     INTEGER,
    after_id     TEXT,
    lease_owner  TEXT,
    lease_until  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    error        TEXT
);

CREATE INDEX replay_jobs_by_state ON replay_jobs (state, lease_until);
