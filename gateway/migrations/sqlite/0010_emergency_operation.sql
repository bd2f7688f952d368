-- Emergency operation (FLOW-7), identity area: who IT staff designated to
-- break the glass, every break-glass access (patient id, not pseudonym:
-- it names the person treated, as the audit log does), and the gateway's
-- operating mode.

CREATE TABLE break_glass_designations (
    person      TEXT PRIMARY KEY REFERENCES persons(id),
    granted_by  TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    revoked_by  TEXT,
    revoked_at  BIGINT                     -- NULL while designated
);

CREATE TABLE break_glass_accesses (
    id           TEXT PRIMARY KEY,
    person       TEXT NOT NULL REFERENCES persons(id),
    institution  TEXT NOT NULL,            -- of the terminal it was asked at
    terminal     TEXT NOT NULL,            -- institution/name
    patient_id   TEXT NOT NULL REFERENCES patients(id),
    reason       TEXT NOT NULL,            -- a BreakGlassReason name
    detail       TEXT NOT NULL,
    started_at   BIGINT NOT NULL,          -- Unix s
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT,                   -- ended by its clinician, or swept at expiry
    end_reason   TEXT,                     -- 'ended' | 'expired'
    reviewed_by  TEXT,                     -- the auditor's review (LOG-3)
    reviewed_at  BIGINT,
    review_note  TEXT
);
CREATE INDEX break_glass_by_person ON break_glass_accesses (person, expires_at);
CREATE INDEX break_glass_unreviewed ON break_glass_accesses (reviewed_at, started_at);

CREATE TABLE operating_mode (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    mode        TEXT NOT NULL CHECK (mode IN ('normal', 'read-only', 'blocked')),
    reason      TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  BIGINT NOT NULL
);
INSERT INTO operating_mode (id, mode, reason, changed_by, changed_at) VALUES (1, 'normal', 'initial', 'system', 0);

-- Admission reads the mode with the suspended terminals (`store::snapshot`):
-- a change moves the generation, so the next request of every gateway
-- process sees it.
CREATE TRIGGER operating_mode_updated AFTER UPDATE ON operating_mode BEGIN UPDATE store_generation SET n = n + 1; END;
