-- Erasure at the end of retention (DATA-8); see the SQLite migration.
CREATE TABLE health.record_tombstones (
    id                 TEXT PRIMARY KEY,
    kind               TEXT NOT NULL,
    institution        TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    last_encounter_at  BIGINT,
    retention_years    BIGINT NOT NULL,
    erased_at          BIGINT NOT NULL,
    erased_by          TEXT NOT NULL,
    audit_request      TEXT NOT NULL,
    audit_seq          BIGINT
);

CREATE OR REPLACE FUNCTION health.records_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM health.record_tombstones t WHERE t.id = OLD.id) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'records are immutable';
    END IF;
    IF (NEW.id, NEW.kind, NEW.patient, NEW.institution, NEW.origin_reference,
        NEW.draft_version, NEW.author, NEW.signer, NEW.document_sha256, NEW.signature, NEW.signature_cert,
        NEW.revocation, NEW.created_at) IS DISTINCT FROM (OLD.id, OLD.kind, OLD.patient, OLD.institution,
        OLD.origin_reference, OLD.draft_version, OLD.author, OLD.signer, OLD.document_sha256, OLD.signature,
        OLD.signature_cert, OLD.revocation, OLD.created_at) THEN
        RAISE EXCEPTION 'records are immutable';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION health.record_signatures_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM health.record_tombstones t WHERE t.id = OLD.record) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'signature containers are immutable: a renewal appends a new version';
END $$;

ALTER TABLE identity.patients ADD COLUMN erased_at BIGINT;
