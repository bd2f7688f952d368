-- A signed record (sealed content, RSA signature, signature certificate,
-- revocation evidence) is a little over 2 kB: past PostgreSQL's default
-- TOAST threshold, so every confirm tried to compress the certificate and
-- wrote it to the TOAST table and its index. Kept inline, a record is one
-- heap tuple; the certificate does not compress anyway.
ALTER TABLE health.records SET (toast_tuple_target = 4096);
