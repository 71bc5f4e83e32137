-- Payload search (issue 20): `q=` finds events whose body contains a word or
-- phrase through this FTS5 index of the bodies (read as text). It is
-- contentless (the body is not stored twice) and keyed by the events row's
-- rowid, kept in step by the triggers below, so the indexer's INSERT and
-- retention's DELETE need not know about it. `json=` filters need no table:
-- they read the body with SQLite's JSON functions, and the pointers
-- configured in a source's `index` get expression indexes at start-up.
CREATE VIRTUAL TABLE events_fts USING fts5(body, content = '', contentless_delete = 1);

INSERT INTO events_fts (rowid, body) SELECT rowid, CAST(body AS TEXT) FROM events;

CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
    INSERT INTO events_fts (rowid, body) VALUES (new.rowid, CAST(new.body AS TEXT));
END;

CREATE TRIGGER events_fts_delete AFTER DELETE ON events BEGIN
    DELETE FROM events_fts WHERE rowid = old.rowid;
END;
