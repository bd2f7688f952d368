"""Parses a FHIR R4 Bundle with fhir.resources 6.5 (FHIR 4.0.1, a model
this project did not write): the bundle, then every entry's resource on its
own by its resourceType. Prints what the tests check as JSON and writes
each signed record's Provenance signature and signed document to OUT_DIR
(for `openssl cms -verify`). Exit 1 with the validator's message when any
resource is not valid FHIR R4.

usage: check_fhir.py BUNDLE.json OUT_DIR
"""
import base64
import json
import os
import sys

from fhir.resources import construct_fhir_element
from fhir.resources.bundle import Bundle


def main():
    path, out_dir = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    try:
        bundle = Bundle.parse_obj(data)
        resources = [construct_fhir_element(e["resource"]["resourceType"], e["resource"]) for e in data["entry"]]
    except Exception as e:  # the validator's own message is the point
        print(f"not valid FHIR R4: {e}", file=sys.stderr)
        return 1
    summary = {"type": bundle.type, "resources": {}, "provenance": [], "documents": {}, "audit_events": []}
    for r in resources:
        summary["resources"][r.resource_type] = summary["resources"].get(r.resource_type, 0) + 1
        if r.resource_type == "DocumentReference":
            summary["documents"][r.id] = {
                "identifier": r.identifier[0].value,
                "attachments": len(r.content),
                "authenticator": r.authenticator.identifier.value if r.authenticator else None,
                "relates_to": [x.target.reference for x in (r.relatesTo or [])],
            }
        elif r.resource_type == "Provenance":
            p = {
                "target": r.target[0].reference,
                "agents": [(a.type.coding[0].code, a.who.identifier.value) for a in r.agent],
                "signature": None,
            }
            if r.signature:
                s = r.signature[0]
                n = len(summary["provenance"])
                sig = os.path.join(out_dir, f"signature-{n}.p7s")
                with open(sig, "wb") as f:
                    f.write(base64.b64decode(s.data))
                doc_id = r.target[0].reference.split("/", 1)[1]
                doc = next(x for x in resources if x.resource_type == "DocumentReference" and x.id == doc_id)
                signed = os.path.join(out_dir, f"document-{n}.json")
                with open(signed, "wb") as f:
                    f.write(base64.b64decode(doc.content[1].attachment.data))
                p["signature"] = {
                    "type": s.type[0].code,
                    "sig_format": s.sigFormat,
                    "who": s.who.identifier.value,
                    "file": sig,
                    "document": signed,
                }
            summary["provenance"].append(p)
        elif r.resource_type == "AuditEvent":
            summary["audit_events"].append({
                "action": r.subtype[0].code,
                "who": r.agent[0].who.display,
                "emergency": bool(r.purposeOfEvent),
                "recorded": r.recorded.isoformat(),
            })
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
