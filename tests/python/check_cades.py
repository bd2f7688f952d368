"""A second, independent check of a record's CAdES signature (DATA-4/5).

pyHanko (PyPI; code this project did not write) validates the detached CMS
signature the way a European CAdES validator does: the message digest, the
signature, the ESS signing-certificate-v2 binding, the signer's chain with
only the CRLs the container embeds (revocation hard-fail, no fetching), and
the signature time-stamp token against its TSA chain.

pyHanko does not validate archive-time-stamp-v3 (nor does any validator
reachable from this workplace's registries: EU DSS is Java on Maven
Central). For those, this script rebuilds each token's imprint input from
ETSI EN 319 122-1 §5.5.3 with asn1crypto's parse of the container — a
second implementation, in another language, from the standard's text —
checks each hash index against the container, and has pyHanko validate
the token over that input. The inputs are written out for `openssl ts
-verify` too.

Usage: check_cades.py DOCUMENT P7S ROOT_DER OUT_DIR  (prints JSON)
"""

import asyncio
import hashlib
import json
import sys
from pathlib import Path

from asn1crypto import algos, cms, core, x509
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.generic_cms import (
    async_validate_detached_cms,
    validate_tst_signed_data,
)
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

ARCHIVE_V3 = "0.4.0.1733.2.4"
ATS_HASH_INDEX_V3 = "0.4.0.19122.1.5"


class Items(core.SequenceOf):
    _child_spec = core.Any


class OctetStrings(core.SequenceOf):
    _child_spec = core.OctetString


def read_index(der):
    """ATSHashIndexV3: [hashIndAlgorithm DEFAULT sha256,] three lists of
    hashes. The optional algorithm and the first list are both SEQUENCEs,
    so the fields are told apart by their count."""
    items = list(Items.load(der))
    algorithm = "sha256"
    if len(items) == 4:
        algorithm = algos.DigestAlgorithm.load(items[0].dump())["algorithm"].native
        items = items[1:]
    assert len(items) == 3, f"ats-hash-index-v3 with {len(items)} lists"
    return algorithm, [[o.native for o in OctetStrings.load(i.dump())] for i in items]


def attr_values(attrs, oid):
    """Every value (as parsed) of the attributes of type `oid`."""
    out = []
    for a in attrs or []:
        if a["type"].dotted == oid:
            out.extend(a["values"])
    return out


def archive_input(signed_data, signer_info, document, index_der):
    """EN 319 122-1 §5.5.3, in order: eContentType, the document's hash, the
    SignerInfo's version, sid, digestAlgorithm, signedAttrs (with its [0]
    tag, as encoded in the SignerInfo), signatureAlgorithm, signature, then
    the ats-hash-index-v3 value."""
    parts = [
        signed_data["encap_content_info"]["content_type"].dump(),
        hashlib.sha256(document).digest(),
    ]
    for field in ["version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "signature"]:
        parts.append(signer_info[field].dump())
    parts.append(index_der)
    return b"".join(parts)


def check_index(signed_data, signer_info, index_der):
    """Every hash the index lists is of something still in the container."""
    algorithm, lists = read_index(index_der)
    assert algorithm == "sha256", f"hash index algorithm {algorithm}"
    h = lambda b: hashlib.sha256(b).digest()
    certs = {h(c.dump()) for c in signed_data["certificates"] or []}
    crls = {h(c.dump()) for c in signed_data["crls"] or []}
    values = set()
    for a in signer_info["unsigned_attrs"] or []:
        for v in a["values"]:
            values.add(h(a["type"].dump() + v.dump()))
    missing = []
    for name, have, listed in zip(["certificates", "crls", "unsigned attribute values"], [certs, crls, values], lists):
        gone = [x for x in listed if x not in have]
        if gone:
            missing.append(f"{len(gone)} {name}")
    return missing, len(lists[2])


def token_status(status):
    return {"intact": status.intact, "valid": status.valid, "trusted": status.trusted, "gen_time": str(status.timestamp)}


async def main():
    document_path, p7s_path, root_path, out_dir = sys.argv[1:5]
    document = Path(document_path).read_bytes()
    info = cms.ContentInfo.load(Path(p7s_path).read_bytes())
    signed_data = info["content"]
    root = x509.Certificate.load(Path(root_path).read_bytes())
    embedded_certs = [c.chosen for c in signed_data["certificates"] or []]
    embedded_crls = [c.chosen for c in signed_data["crls"] or []]

    def context():
        return ValidationContext(
            trust_roots=[root],
            other_certs=embedded_certs,
            crls=embedded_crls,
            allow_fetching=False,
            revocation_mode="hard-fail",
        )

    status = await async_validate_detached_cms(
        document,
        signed_data,
        signer_validation_context=context(),
        ts_validation_context=context(),
        key_usage_settings=KeyUsageConstraints(key_usage={"non_repudiation"}),
    )
    report = {
        "signature": {
            "intact": status.intact,
            "valid": status.valid,
            "trusted": status.trusted,
            "revoked": status.revoked,
            "signer": status.signing_cert.subject.human_friendly,
        },
        "signature_timestamp": token_status(status.timestamp_validity) if status.timestamp_validity else None,
        "archive_timestamps": [],
    }

    signer_info = signed_data["signer_infos"][0]
    for n, value in enumerate(attr_values(signer_info["unsigned_attrs"], ARCHIVE_V3)):
        # asn1crypto does not know the attribute: its value is read as a
        # time-stamp token (a ContentInfo) from its bytes.
        token = cms.ContentInfo.load(value.dump())
        tst_sd = token["content"]
        tsi = tst_sd["signer_infos"][0]
        indices = attr_values(tsi["unsigned_attrs"], ATS_HASH_INDEX_V3)
        assert len(indices) == 1, f"archive time-stamp {n + 1}: {len(indices)} ats-hash-index-v3 values"
        index_der = indices[0].dump()
        missing, covered = check_index(signed_data, signer_info, index_der)
        data = archive_input(signed_data, signer_info, document, index_der)
        Path(out_dir, f"ats-{n + 1}.bin").write_bytes(data)
        Path(out_dir, f"ats-{n + 1}.tst").write_bytes(token.dump())
        imprint = lambda algorithm: hashlib.new(algorithm, data).digest()
        tst_status = TimestampSignatureStatus(**await validate_tst_signed_data(tst_sd, context(), imprint))
        entry = token_status(tst_status)
        entry.update({"missing": missing, "covers": covered})
        report["archive_timestamps"].append(entry)
    print(json.dumps(report, indent=2, default=str))


asyncio.run(main())
