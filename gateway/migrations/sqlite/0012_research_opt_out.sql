-- A patient's objection to secondary use (FLOW-8), set at the desk
-- (`hpki-gateway admin patient opt-out`): such a patient is never in a
-- de-identified export, consent or not.
ALTER TABLE patients ADD COLUMN research_opt_out BIGINT NOT NULL DEFAULT 0;
ALTER TABLE patients ADD COLUMN research_opt_out_at BIGINT;
