-- A CAdES B-B container (the signer's certificate, its CA's and the root's,
-- two CRLs, the signed attributes and the signature) is some 4-5 kB: past
-- PostgreSQL's default TOAST threshold, so every confirm tried to compress
-- it — DER certificates and signatures do not compress — and wrote it to
-- the TOAST table and its index. Kept inline up to a page's worth, a
-- container is one heap tuple; B-LTA containers (two TSA tokens and the
-- TSA's chain) are larger and still go to TOAST, where the TSA's round
-- trips dwarf the cost.
ALTER TABLE health.record_signatures SET (toast_tuple_target = 8160);
