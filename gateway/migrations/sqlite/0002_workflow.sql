-- Patients (identity area) and the assistant-input / doctor-confirm workflow
-- (health area). The two areas share nothing but the patient's pseudonymous
-- key (DATA-2); health content is AES-256-GCM ciphertext with its key id
-- (DATA-1).

CREATE TABLE patients (
    id            TEXT PRIMARY KEY,        -- what staff and the patient use
    pseudonym     TEXT NOT NULL UNIQUE,    -- the only key in the health area
    name          TEXT NOT NULL,
    name_kanji    TEXT,
    birth_date    TEXT NOT NULL,           -- YYYY-MM-DD
    registered_by TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE patient_consents (
    patient_id    TEXT NOT NULL REFERENCES patients(id),
    institution   TEXT NOT NULL REFERENCES institutions(name),
    granted_at    BIGINT NOT NULL,
    recorded_by   TEXT NOT NULL,
    withdrawn_at  BIGINT,
    PRIMARY KEY (patient_id, institution)
);

CREATE TABLE patient_accounts (
    patient_id       TEXT PRIMARY KEY REFERENCES patients(id),
    password_hash    TEXT NOT NULL,        -- argon2id PHC string
    must_change      BIGINT NOT NULL,      -- 1 until the initial password is replaced
    failed_attempts  BIGINT NOT NULL,
    locked_until     BIGINT NOT NULL,      -- Unix s; 0 when not locked
    enrolled_at      BIGINT NOT NULL,
    changed_at       BIGINT NOT NULL
);

CREATE TABLE patient_sessions (
    token_hash  BLOB PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT
);

CREATE TABLE health.encounters (
    id           TEXT PRIMARY KEY,
    patient      TEXT NOT NULL,            -- pseudonym
    institution  TEXT NOT NULL,
    opened_by    TEXT NOT NULL,
    opened_at    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    closed_at    BIGINT,
    closed_by    TEXT
);
CREATE INDEX health.encounters_patient ON encounters (patient, institution);

CREATE TABLE health.drafts (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,            -- medical | dispensing
    patient      TEXT NOT NULL,            -- pseudonym
    encounter    TEXT NOT NULL REFERENCES encounters(id),
    institution  TEXT NOT NULL,
    assistant    TEXT NOT NULL,            -- who entered it
    signer       TEXT NOT NULL,            -- who must confirm it
    version      BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    content      BLOB NOT NULL,            -- nonce || AES-256-GCM(content), AAD "draft:<id>"
    status       TEXT NOT NULL,            -- pending | confirmed
    record_id    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX health.drafts_signer ON drafts (signer, status);

CREATE TABLE health.records (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,       -- medical | dispensing | note
    patient           TEXT NOT NULL,       -- pseudonym
    institution       TEXT NOT NULL,       -- originating institution (DATA-3)
    origin_reference  TEXT NOT NULL UNIQUE, -- the original's reference there; one record per draft
    draft_version     BIGINT,
    author            TEXT NOT NULL,
    signer            TEXT,
    key_id            TEXT NOT NULL,
    content           BLOB NOT NULL,       -- nonce || AES-256-GCM(signed document or note), AAD "record:<id>"
    document_sha256   BLOB,
    signature         BLOB,
    signature_cert    BLOB,
    revocation        TEXT NOT NULL,       -- JSON: the CRLs that showed the signature certificate unrevoked
    created_at        BIGINT NOT NULL
);
CREATE INDEX health.records_patient ON records (patient, created_at);

-- A record is never changed or removed; only key rotation re-encrypts it.
CREATE TRIGGER health.records_immutable BEFORE UPDATE OF id, kind, patient, institution, origin_reference,
    draft_version, author, signer, document_sha256, signature, signature_cert, revocation, created_at ON records
BEGIN SELECT RAISE(ABORT, 'records are immutable'); END;
CREATE TRIGGER health.records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'records are immutable'); END;
