-- A record's signature container (CAdES, DER `signature.p7s`), one row per
-- version: seq 0 is what the confirm made; a renewal appends seq 1, 2, …
-- and never rewrites an earlier one (see the SQLite migration).
CREATE TABLE health.record_signatures (
    record           TEXT NOT NULL REFERENCES health.records(id),
    seq              BIGINT NOT NULL,
    level            TEXT NOT NULL,
    time_stamped_at  BIGINT,
    container        BYTEA NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (record, seq)
);

CREATE FUNCTION health.record_signatures_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signature containers are immutable: a renewal appends a new version';
END $$;
CREATE TRIGGER record_signatures_immutable BEFORE UPDATE OR DELETE ON health.record_signatures
    FOR EACH ROW EXECUTE FUNCTION health.record_signatures_immutable();
