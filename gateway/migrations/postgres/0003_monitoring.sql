-- Abnormal-access rules look back over one terminal's recent logins; the
-- monthly report reads a month of the log.
CREATE INDEX audit_terminal ON identity.audit (terminal, at);
CREATE INDEX audit_at ON identity.audit (at);
