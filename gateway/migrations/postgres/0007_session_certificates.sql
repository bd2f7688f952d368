-- The card's authentication certificate itself (DER), kept with the
-- session it opened, so that a CRL revoking it ends the session at once
-- instead of at its 12 h end (issue 18). Sessions opened before this
-- column existed have none and keep their end.
ALTER TABLE identity.sessions ADD COLUMN card_cert_der BYTEA;
