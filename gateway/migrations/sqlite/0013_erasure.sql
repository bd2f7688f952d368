-- Erasure at the end of retention (DATA-8). A record's health content is
-- erased for good: the row, its signature containers, its draft and the
-- correction requests against it are deleted; a tombstone keeps the record
-- id, kind, institution, dates and the erasure's audit entry. The
-- immutability triggers now let exactly that through: a delete of a record
-- (or of its containers) whose tombstone is already written, in the same
-- transaction. Nothing else changes a record. The audit log is never erased.
CREATE TABLE health.record_tombstones (
    id                 TEXT PRIMARY KEY,          -- the record's id
    kind               TEXT NOT NULL,
    institution        TEXT NOT NULL,
    created_at         BIGINT NOT NULL,           -- the record's
    last_encounter_at  BIGINT,                    -- what retention counted from
    retention_years    BIGINT NOT NULL,
    erased_at          BIGINT NOT NULL,
    erased_by          TEXT NOT NULL,             -- admin:<operator>
    audit_request      TEXT NOT NULL,             -- the erasure's audit entry (request id) …
    audit_seq          BIGINT                     -- … and its seq, once written
);

DROP TRIGGER health.records_no_delete;
CREATE TRIGGER health.records_no_delete BEFORE DELETE ON records
WHEN NOT EXISTS (SELECT 1 FROM record_tombstones t WHERE t.id = OLD.id)
BEGIN SELECT RAISE(ABORT, 'records are immutable'); END;

DROP TRIGGER health.record_signatures_no_delete;
CREATE TRIGGER health.record_signatures_no_delete BEFORE DELETE ON record_signatures
WHEN NOT EXISTS (SELECT 1 FROM record_tombstones t WHERE t.id = OLD.record)
BEGIN SELECT RAISE(ABORT, 'signature containers are immutable: a renewal appends a new version'); END;

-- The patient's identity data, wiped once no record of theirs is left.
ALTER TABLE patients ADD COLUMN erased_at BIGINT;
