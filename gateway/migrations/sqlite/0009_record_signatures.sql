-- A record's signature container (CAdES, DER `signature.p7s`), one row per
-- version: seq 0 is what the confirm made; a renewal (an added archive
-- time-stamp) appends seq 1, 2, … and never rewrites an earlier one.
-- Not encrypted: the container is detached (the document stays sealed in
-- records.content) and holds a hash, certificates, CRLs and tokens.
CREATE TABLE health.record_signatures (
    record           TEXT NOT NULL REFERENCES records(id),
    seq              BIGINT NOT NULL,
    level            TEXT NOT NULL,        -- CAdES B-B | B-T | B-LT
    time_stamped_at  BIGINT,               -- genTime of the signature time-stamp
    container        BLOB NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (record, seq)
);

CREATE TRIGGER health.record_signatures_immutable BEFORE UPDATE ON record_signatures
BEGIN SELECT RAISE(ABORT, 'signature containers are immutable: a renewal appends a new version'); END;
CREATE TRIGGER health.record_signatures_no_delete BEFORE DELETE ON record_signatures
BEGIN SELECT RAISE(ABORT, 'signature containers are immutable: a renewal appends a new version'); END;
