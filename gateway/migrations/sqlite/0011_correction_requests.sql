-- Patients' correction requests (FLOW-9), health area: keyed by the
-- patient's pseudonym like every health row (DATA-2), the patient's text and
-- the staff's answer sealed with the record keys (DATA-1). Records stay
-- immutable: an accepted request is answered by a new record (kind
-- `correction`) that references the old one.
CREATE TABLE health.correction_requests (
    id                 TEXT PRIMARY KEY,
    patient            TEXT NOT NULL,              -- pseudonym
    record             TEXT NOT NULL REFERENCES records(id),
    institution        TEXT NOT NULL,              -- the record's, whose staff answer
    status             TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    key_id             TEXT NOT NULL,
    content            BLOB NOT NULL,              -- sealed JSON {text, resolution?}
    created_at         BIGINT NOT NULL,
    resolved_by        TEXT,
    resolved_at        BIGINT,
    correction_record  TEXT
);
CREATE INDEX health.correction_requests_queue ON correction_requests (institution, status, created_at);
CREATE INDEX health.correction_requests_patient ON correction_requests (patient, created_at);
