-- The audit outbox (issue 18): a state change writes the audit entry it
-- owes into the outbox of its own area, in its own transaction, so that a
-- committed change always leaves a trace. The audit writer deletes the row
-- once the entry is in the chain; at start the gateway appends the entries
-- of rows still there (a crash came between the two commits). One outbox
-- per database file: SQLite in WAL mode does not make a transaction across
-- attached files atomic, so a health change stages its entry in health.db.
CREATE TABLE audit_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   TEXT NOT NULL,
    at           BIGINT NOT NULL,          -- Unix milliseconds
    actor        TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    institution  TEXT NOT NULL,
    action       TEXT NOT NULL,
    object       TEXT NOT NULL
);
CREATE INDEX audit_outbox_request ON audit_outbox (request_id);
CREATE TABLE health.audit_outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   TEXT NOT NULL,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    institution  TEXT NOT NULL,
    action       TEXT NOT NULL,
    object       TEXT NOT NULL
);
CREATE INDEX health.audit_outbox_request ON audit_outbox (request_id);
