-- One counter that moves whenever something a request's admission depends
-- on changes: a terminal suspended or lifted, a person changed or
-- (de)activated, a session ended. Gateways keep what they read
-- of terminals and sessions for as long as the counter stays put (one tiny
-- read per batch of requests instead of the lookup); triggers move it, so no
-- writer — gateway, admin CLI, alert rule, restore — can forget to.
CREATE TABLE store_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    n   BIGINT NOT NULL
);
INSERT INTO store_generation (id, n) VALUES (1, 0);

-- What the gateway and the admin CLI change. (No code deletes terminals,
-- persons or sessions; a session removed by hand is seen within the 10 s a
-- cached session may go without the store.)
CREATE TRIGGER terminal_status_inserted AFTER INSERT ON terminal_status BEGIN UPDATE store_generation SET n = n + 1; END;
CREATE TRIGGER terminal_status_updated AFTER UPDATE ON terminal_status BEGIN UPDATE store_generation SET n = n + 1; END;
CREATE TRIGGER persons_updated AFTER UPDATE ON persons BEGIN UPDATE store_generation SET n = n + 1; END;
-- A session's last use moves on every request and changes nothing cached:
-- only its end counts.
CREATE TRIGGER sessions_ended AFTER UPDATE OF ended_at ON sessions BEGIN UPDATE store_generation SET n = n + 1; END;
