-- Abnormal-access rules look back over one terminal's recent logins; the
-- monthly report reads a month of the log.
CREATE INDEX audit_terminal ON audit (terminal, at);
CREATE INDEX audit_at ON audit (at);

-- Terminal certificates the listener has seen (for expiry in the reports).
CREATE TABLE terminal_certs (
    institution  TEXT NOT NULL,
    name         TEXT NOT NULL,
    serial       TEXT NOT NULL,
    not_after    BIGINT NOT NULL,   -- Unix seconds
    last_seen    BIGINT NOT NULL,   -- Unix milliseconds
    PRIMARY KEY (institution, name, serial)
);
