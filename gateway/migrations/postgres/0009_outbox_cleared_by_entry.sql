-- The entry a change owes clears the change's staged row in the statement
-- that appends it (audit::outbox): one statement, one commit, instead of a
-- DELETE and a second commit after every batch of entries. The identity
-- outbox only, as on SQLite (whose health file a trigger cannot reach): the
-- audit writer deletes the health rows. Once per INSERT statement (a batch
-- of entries), not once per row. Same request and action: another entry of
-- the same request must not clear what it does not stand for.
CREATE FUNCTION identity.audit_clears_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM identity.audit_outbox o
        USING appended n
        WHERE o.request_id = n.request_id AND o.action = n.action;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_clears_outbox AFTER INSERT ON identity.audit
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION identity.audit_clears_outbox();
