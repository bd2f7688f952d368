-- Identity area: schema "identity". Health area: schema "health".
-- Connections use search_path identity, health, public.

CREATE SCHEMA IF NOT EXISTS identity;
CREATE SCHEMA IF NOT EXISTS health;

CREATE TABLE identity.institutions (
    name        TEXT PRIMARY KEY,
    name_kanji  TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE identity.persons (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    name         TEXT NOT NULL,
    name_kanji   TEXT,
    institution  TEXT NOT NULL REFERENCES identity.institutions(name),
    active       BIGINT NOT NULL,          -- 0 or 1
    created_at   BIGINT NOT NULL,
    changed_at   BIGINT NOT NULL
);

CREATE TABLE identity.assistant_links (
    assistant_id  TEXT NOT NULL REFERENCES identity.persons(id),
    doctor_id     TEXT NOT NULL REFERENCES identity.persons(id),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (assistant_id, doctor_id)
);

CREATE TABLE identity.terminal_status (
    institution  TEXT NOT NULL,
    name         TEXT NOT NULL,
    suspended    BIGINT NOT NULL,          -- 0 or 1
    changed_at   BIGINT NOT NULL,
    reason       TEXT,
    PRIMARY KEY (institution, name)
);

CREATE TABLE identity.challenges (
    id          TEXT PRIMARY KEY,
    nonce       BYTEA NOT NULL,
    terminal    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE identity.sessions (
    token_hash    BYTEA PRIMARY KEY,
    person_id     TEXT NOT NULL REFERENCES identity.persons(id),
    terminal      TEXT NOT NULL,
    card_cert     BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT,
    end_reason    TEXT
);

CREATE TABLE identity.audit (
    seq          BIGINT PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    terminal     TEXT NOT NULL,
    institution  TEXT NOT NULL,
    action       TEXT NOT NULL,
    object       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    prev_hash    BYTEA NOT NULL,
    hash         BYTEA NOT NULL
);
CREATE INDEX audit_actor ON identity.audit (actor, at);

CREATE FUNCTION identity.audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON identity.audit
    FOR EACH ROW EXECUTE FUNCTION identity.audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON identity.audit
    FOR EACH STATEMENT EXECUTE FUNCTION identity.audit_append_only();

CREATE TABLE health.area_marker (created_at BIGINT NOT NULL);
