-- One counter that moves whenever something a request's admission depends
-- on changes: a terminal suspended or lifted, a person added, changed or
-- (de)activated, a session ended or removed. Gateways keep what they read
-- of terminals and sessions for as long as the counter stays put (one tiny
-- read per batch of requests instead of the lookup); triggers move it, so no
-- writer — gateway, admin CLI, alert rule, restore — can forget to. The
-- counter's row lock orders concurrent changes; a reader under READ
-- COMMITTED sees every change committed before its statement began.
CREATE TABLE store_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    n   BIGINT NOT NULL
);
INSERT INTO store_generation (id, n) VALUES (1, 0);

CREATE FUNCTION store_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_generation SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER terminal_status_changed AFTER INSERT OR UPDATE OR DELETE ON terminal_status
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
CREATE TRIGGER persons_changed AFTER INSERT OR UPDATE OR DELETE ON persons
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
-- A session's last use moves on every request and changes nothing cached:
-- only its end counts.
CREATE TRIGGER sessions_ended AFTER UPDATE OF ended_at OR DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
