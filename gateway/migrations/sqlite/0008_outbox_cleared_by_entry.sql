-- The entry a change owes clears the change's staged row in the statement
-- that appends it (audit::outbox): one statement, one commit, instead of a
-- DELETE and a second commit after every batch of entries. Only the
-- identity outbox: a trigger cannot reach the health file, whose rows the
-- audit writer still deletes. Same request and action: another entry of
-- the same request (none is written today) must not clear what it does not
-- stand for.
CREATE TRIGGER audit_clears_outbox AFTER INSERT ON audit
BEGIN
    DELETE FROM audit_outbox WHERE request_id = NEW.request_id AND action = NEW.action;
END;
