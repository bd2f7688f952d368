-- Patients' correction requests (FLOW-9), health area (see the SQLite
-- migration).
CREATE TABLE health.correction_requests (
    id                 TEXT PRIMARY KEY,
    patient            TEXT NOT NULL,
    record             TEXT NOT NULL REFERENCES health.records(id),
    institution        TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    key_id             TEXT NOT NULL,
    content            BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    resolved_by        TEXT,
    resolved_at        BIGINT,
    correction_record  TEXT
);
CREATE INDEX correction_requests_queue ON health.correction_requests (institution, status, created_at);
CREATE INDEX correction_requests_patient ON health.correction_requests (patient, created_at);
