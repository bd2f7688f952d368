-- On PostgreSQL both areas are schemas of one database, so the entry's
-- INSERT clears the staged row of either outbox in its own statement (see
-- 0009): no DELETE and no second commit after each batch of entries for the
-- health area's changes (confirms, notes, encounters) either. SQLite keeps
-- the audit writer's clean-up: its health file is out of a trigger's reach.
CREATE OR REPLACE FUNCTION identity.audit_clears_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM identity.audit_outbox o
        USING appended n
        WHERE o.request_id = n.request_id AND o.action = n.action;
    DELETE FROM health.audit_outbox o
        USING appended n
        WHERE o.request_id = n.request_id AND o.action = n.action;
    RETURN NULL;
END
$$;
