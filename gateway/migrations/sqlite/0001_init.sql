-- Identity area: identity.db (the main database of every connection).
-- Health area: health.db, attached as "health" by every connection.

CREATE TABLE institutions (
    name        TEXT PRIMARY KEY,          -- romaji, as in certificates (Subject O)
    name_kanji  TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE persons (
    id           TEXT PRIMARY KEY,         -- licensed: Subject serialNumber; assistant: institution/staff id
    role         TEXT NOT NULL,            -- doctor, dentist, pharmacist, nurse, dietitian, assistant, …
    name         TEXT NOT NULL,
    name_kanji   TEXT,
    institution  TEXT NOT NULL REFERENCES institutions(name),
    active       BIGINT NOT NULL,          -- 0 or 1
    created_at   BIGINT NOT NULL,
    changed_at   BIGINT NOT NULL
);

CREATE TABLE assistant_links (
    assistant_id  TEXT NOT NULL REFERENCES persons(id),
    doctor_id     TEXT NOT NULL REFERENCES persons(id),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (assistant_id, doctor_id)
);

CREATE TABLE terminal_status (
    institution  TEXT NOT NULL,
    name         TEXT NOT NULL,
    suspended    BIGINT NOT NULL,          -- 0 or 1
    changed_at   BIGINT NOT NULL,
    reason       TEXT,
    PRIMARY KEY (institution, name)
);

CREATE TABLE challenges (
    id          TEXT PRIMARY KEY,
    nonce       BLOB NOT NULL,
    terminal    TEXT NOT NULL,             -- institution/name of the terminal certificate
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE sessions (
    token_hash    BLOB PRIMARY KEY,        -- SHA-256 of the bearer token
    person_id     TEXT NOT NULL REFERENCES persons(id),
    terminal      TEXT NOT NULL,
    card_cert     BLOB NOT NULL,           -- SHA-256 of the card's authentication certificate
    created_at    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT
);

CREATE TABLE audit (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,          -- Unix milliseconds
    actor        TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    institution  TEXT NOT NULL,
    action       TEXT NOT NULL,
    object       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL
);
CREATE INDEX audit_actor ON audit (actor, at);

-- No update or delete path for the audit log.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE health.area_marker (created_at BIGINT NOT NULL);
