-- Reconciliation (issue 22). Times are microseconds since the Unix epoch.
-- One lease per reconciled source: only its holder runs the reconciler.
CREATE TABLE reconcile_leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
-- What was done about a missing item (a redelivery asked for, an event
-- published), so that it is never done twice within the lookback.
CREATE TABLE reconcile_actions (
    source   TEXT    NOT NULL,
    item     TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    acted_at INTEGER NOT NULL,
    PRIMARY KEY (source, item)
);
-- The last run of each source, as the JSON GET /v1/reconcile shows.
CREATE TABLE reconcile_runs (
    source      TEXT    NOT NULL PRIMARY KEY,
    report      TEXT    NOT NULL,
    finished_at INTEGER NOT NULL
);
