-- The audit outbox (issue 18): a state change writes the audit entry it
-- owes into the outbox of its own area, in its own transaction, so that a
-- committed change always leaves a trace. The audit writer deletes the row
-- once the entry is in the chain; at start the gateway appends the entries
-- of rows still there (a crash came between the two commits). One outbox
-- per area, as on SQLite (where the areas are two files).
CREATE TABLE identity.audit_outbox (
    id           BIGSERIAL PRIMARY KEY,
    request_id   TEXT NOT NULL,
    at           BIGINT NOT NULL,          -- Unix milliseconds
    actor        TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    institution  TEXT NOT NULL,
    action       TEXT NOT NULL,
    object       TEXT NOT NULL
);
CREATE INDEX audit_outbox_request ON identity.audit_outbox (request_id);
CREATE TABLE health.audit_outbox (
    id           BIGSERIAL PRIMARY KEY,
    request_id   TEXT NOT NULL,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    institution  TEXT NOT NULL,
    action       TEXT NOT NULL,
    object       TEXT NOT NULL
);
CREATE INDEX audit_outbox_request ON health.audit_outbox (request_id);
