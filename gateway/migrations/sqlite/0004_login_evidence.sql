-- The CRLs that showed a login's card certificate and its CAs unrevoked
-- (issuer, CRL number, thisUpdate, scope; JSON), kept with the session it
-- opened. Sessions opened before this column existed have none.
ALTER TABLE sessions ADD COLUMN revocation TEXT NOT NULL DEFAULT '[]';
