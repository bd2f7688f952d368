-- Patients (identity) and the assistant-input / doctor-confirm workflow
-- (health). The schemas share nothing but the patient's pseudonymous key
-- (DATA-2); health content is AES-256-GCM ciphertext with its key id (DATA-1).

CREATE TABLE identity.patients (
    id            TEXT PRIMARY KEY,
    pseudonym     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    name_kanji    TEXT,
    birth_date    TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE identity.patient_consents (
    patient_id    TEXT NOT NULL REFERENCES identity.patients(id),
    institution   TEXT NOT NULL REFERENCES identity.institutions(name),
    granted_at    BIGINT NOT NULL,
    recorded_by   TEXT NOT NULL,
    withdrawn_at  BIGINT,
    PRIMARY KEY (patient_id, institution)
);

CREATE TABLE identity.patient_accounts (
    patient_id       TEXT PRIMARY KEY REFERENCES identity.patients(id),
    password_hash    TEXT NOT NULL,
    must_change      BIGINT NOT NULL,
    failed_attempts  BIGINT NOT NULL,
    locked_until     BIGINT NOT NULL,
    enrolled_at      BIGINT NOT NULL,
    changed_at       BIGINT NOT NULL
);

CREATE TABLE identity.patient_sessions (
    token_hash  BYTEA PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES identity.patients(id),
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT
);

CREATE TABLE health.encounters (
    id           TEXT PRIMARY KEY,
    patient      TEXT NOT NULL,
    institution  TEXT NOT NULL,
    opened_by    TEXT NOT NULL,
    opened_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    closed_at    BIGINT,
    closed_by    TEXT
);
CREATE INDEX encounters_patient ON health.encounters (patient, institution);

CREATE TABLE health.drafts (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    patient      TEXT NOT NULL,
    encounter    TEXT NOT NULL REFERENCES health.encounters(id),
    institution  TEXT NOT NULL,
    assistant    TEXT NOT NULL,
    signer       TEXT NOT NULL,
    version      BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    content      BYTEA NOT NULL,
    status       TEXT NOT NULL,
    record_id    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX drafts_signer ON health.drafts (signer, status);

CREATE TABLE health.records (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    patient           TEXT NOT NULL,
    institution       TEXT NOT NULL,
    origin_reference  TEXT NOT NULL UNIQUE,
    draft_version     BIGINT,
    author            TEXT NOT NULL,
    signer            TEXT,
    key_id            TEXT NOT NULL,
    content           BYTEA NOT NULL,
    document_sha256   BYTEA,
    signature         BYTEA,
    signature_cert    BYTEA,
    revocation        TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX records_patient ON health.records (patient, created_at);

CREATE FUNCTION health.records_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (NEW.id, NEW.kind, NEW.patient, NEW.institution, NEW.origin_reference,
        NEW.draft_version, NEW.author, NEW.signer, NEW.document_sha256, NEW.signature, NEW.signature_cert,
        NEW.revocation, NEW.created_at) IS DISTINCT FROM (OLD.id, OLD.kind, OLD.patient, OLD.institution,
        OLD.origin_reference, OLD.draft_version, OLD.author, OLD.signer, OLD.document_sha256, OLD.signature,
        OLD.signature_cert, OLD.revocation, OLD.created_at) THEN
        RAISE EXCEPTION 'records are immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER records_immutable BEFORE UPDATE OR DELETE ON health.records
    FOR EACH ROW EXECUTE FUNCTION health.records_immutable();
