-- A patient's objection to secondary use (FLOW-8); see the SQLite migration.
ALTER TABLE identity.patients ADD COLUMN research_opt_out BIGINT NOT NULL DEFAULT 0;
ALTER TABLE identity.patients ADD COLUMN research_opt_out_at BIGINT;
