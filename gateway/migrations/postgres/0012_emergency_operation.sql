-- Emergency operation (FLOW-7), identity area: who IT staff designated to
-- break the glass, every break-glass access, and the gateway's operating
-- mode (see the SQLite migration).

CREATE TABLE identity.break_glass_designations (
    person      TEXT PRIMARY KEY REFERENCES identity.persons(id),
    granted_by  TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    revoked_by  TEXT,
    revoked_at  BIGINT
);

CREATE TABLE identity.break_glass_accesses (
    id           TEXT PRIMARY KEY,
    person       TEXT NOT NULL REFERENCES identity.persons(id),
    institution  TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    patient_id   TEXT NOT NULL REFERENCES identity.patients(id),
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT,
    end_reason   TEXT,
    reviewed_by  TEXT,
    reviewed_at  BIGINT,
    review_note  TEXT
);
CREATE INDEX break_glass_by_person ON identity.break_glass_accesses (person, expires_at);
CREATE INDEX break_glass_unreviewed ON identity.break_glass_accesses (reviewed_at, started_at);

CREATE TABLE identity.operating_mode (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    mode        TEXT NOT NULL CHECK (mode IN ('normal', 'read-only', 'blocked')),
    reason      TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  BIGINT NOT NULL
);
INSERT INTO identity.operating_mode (id, mode, reason, changed_by, changed_at) VALUES (1, 'normal', 'initial', 'system', 0);

CREATE TRIGGER operating_mode_changed AFTER UPDATE ON identity.operating_mode
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
