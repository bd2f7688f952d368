//! A patient's disclosure as a FHIR R4 (4.0.1) Bundle of type
//! `collection` (FLOW-9): the Patient; each record as a DocumentReference
//! (its content, and for a signed record the exact signed bytes as a second
//! attachment); a Provenance per record whose agents are the enterer
//! (assistant) and the verifier (the confirming doctor) or the author (a
//! note), with the CAdES signature container as its signature; and an
//! AuditEvent per access to the patient's records (institution and role,
//! never who). The tests parse every resource with an independent FHIR R4
//! model (`fhir.resources` from PyPI).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_protocol::rights::{AccessEntry, DisclosedRecord, Disclosure, RecordPerson};
use serde_json::{Value, json};

const PARTICIPANT: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
/// ASTM E1762 signature types; 1.2.840.10065.1.12.1.5 is "Verification
/// Signature" (the doctor's confirmation of what was entered).
const SIGNATURE_TYPE: &str = "urn:iso-astm:E1762-95:2013";

/// Record id → its signed bytes and newest signature container.
pub type Signed = HashMap<String, (Vec<u8>, Vec<u8>)>;

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`) for one of ours: base64url ids
/// carry `_`, which FHIR ids may not.
pub fn fhir_id(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '.' }).take(64).collect()
}

fn person_ref(p: &RecordPerson, system: &str) -> Value {
    json!({
        "identifier": {"system": system, "value": p.id},
        "display": format!("{} ({}, {})", p.name, p.role, p.institution),
    })
}

fn agent(code: &str, who: Value) -> Value {
    json!({"type": {"coding": [{"system": PARTICIPANT, "code": code}]}, "who": who})
}

/// The bundle; `signed` holds what signed records have (by record id).
pub fn bundle(gateway_id: &str, d: &Disclosure, signed: &Signed) -> Value {
    let base = format!("https://{gateway_id}/fhir");
    let persons = format!("urn:hpki-gateway:{gateway_id}:person");
    let pid = fhir_id(&d.patient.id);
    let patient_ref = format!("Patient/{pid}");
    let mut names = vec![json!({"use": "official", "text": d.patient.name})];
    if let Some(k) = &d.patient.name_kanji {
        names.push(json!({"use": "usual", "text": k}));
    }
    let mut entries = vec![json!({
        "fullUrl": format!("{base}/{patient_ref}"),
        "resource": {
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": format!("urn:hpki-gateway:{gateway_id}:patient"), "value": d.patient.id}],
            "name": names,
            "birthDate": d.patient.birth_date,
        },
    })];
    for r in &d.records {
        let (doc, prov) = record_resources(r, &patient_ref, &persons, signed.get(&r.record.id));
        for resource in [doc, prov] {
            let url = format!(
                "{base}/{}/{}",
                resource["resourceType"].as_str().unwrap_or("-"),
                resource["id"].as_str().unwrap_or("-")
            );
            entries.push(json!({"fullUrl": url, "resource": resource}));
        }
    }
    for (i, a) in d.accesses.iter().enumerate() {
        let resource = audit_event(i, a, &patient_ref, gateway_id);
        entries.push(json!({"fullUrl": format!("{base}/AuditEvent/{}", resource["id"].as_str().unwrap_or("-")), "resource": resource}));
    }
    json!({
        "resourceType": "Bundle",
        "id": fhir_id(&format!("disclosure-{}", d.patient.id)),
        "meta": {"lastUpdated": d.generated_at},
        "type": "collection",
        "timestamp": d.generated_at,
        "entry": entries,
    })
}

fn record_resources(
    r: &DisclosedRecord,
    patient_ref: &str,
    persons: &str,
    signed: Option<&(Vec<u8>, Vec<u8>)>,
) -> (Value, Value) {
    let rec = &r.record;
    let id = fhir_id(&rec.id);
    let content = serde_json::to_vec(&rec.content).unwrap_or_default();
    let mut attachments = vec![json!({"attachment": {
        "contentType": "application/json",
        "data": B64.encode(&content),
        "title": format!("{} record {}", rec.kind, rec.id),
        "creation": rec.created_at,
    }})];
    if let Some((document, _)) = signed {
        attachments.push(json!({"attachment": {
            "contentType": "application/json",
            "data": B64.encode(document),
            "title": "the signed document (the bytes the signature covers)",
        }}));
    }
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "id": id,
        "identifier": [{"system": "urn:hpki-gateway:record", "value": rec.id}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": "urn:hpki-gateway:record-kind", "code": rec.kind}], "text": rec.kind},
        "subject": {"reference": patient_ref},
        "date": rec.created_at,
        "author": [person_ref(&r.entered_by, persons)],
        "custodian": {"display": rec.institution},
        "content": attachments,
    });
    if let Some(by) = &r.confirmed_by {
        doc["authenticator"] = person_ref(by, persons);
    }
    if let Some(old) = rec.origin_reference.strip_prefix("correction:") {
        doc["relatesTo"] =
            json!([{"code": "appends", "target": {"reference": format!("DocumentReference/{}", fhir_id(old))}}]);
    }
    let agents = match &r.confirmed_by {
        Some(by) if by.id != r.entered_by.id => {
            vec![agent("enterer", person_ref(&r.entered_by, persons)), agent("verifier", person_ref(by, persons))]
        }
        Some(by) => vec![agent("author", person_ref(by, persons)), agent("verifier", person_ref(by, persons))],
        None => vec![agent("author", person_ref(&r.entered_by, persons))],
    };
    let mut prov = json!({
        "resourceType": "Provenance",
        "id": fhir_id(&format!("prov-{}", rec.id)),
        "target": [{"reference": format!("DocumentReference/{id}")}],
        "recorded": rec.created_at,
        "agent": agents,
    });
    if let (Some((_, container)), Some(by)) = (signed, &r.confirmed_by) {
        prov["signature"] = json!([{
            "type": [{"system": SIGNATURE_TYPE, "code": "1.2.840.10065.1.12.1.5", "display": "Verification Signature"}],
            "when": rec.time_stamped_at.as_deref().unwrap_or(&rec.created_at),
            "who": person_ref(by, persons),
            "targetFormat": "application/json",
            "sigFormat": "application/pkcs7-signature",
            "data": B64.encode(container),
        }]);
    }
    (doc, prov)
}

fn audit_event(i: usize, a: &AccessEntry, patient_ref: &str, gateway_id: &str) -> Value {
    let reads = a.action.contains("read")
        || a.action.starts_with("patient.records")
        || a.action.starts_with("patient.disclosure");
    let who = if a.institution == "-" { a.role.clone() } else { format!("{} ({})", a.institution, a.role) };
    let mut e = json!({
        "resourceType": "AuditEvent",
        "id": format!("access-{}", i + 1),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "urn:hpki-gateway:audit-action", "code": a.action}],
        "action": if reads { "R" } else { "E" },
        "recorded": a.at,
        "outcome": if a.outcome == "ok" { "0" } else { "4" },
        "agent": [{"type": {"text": a.role}, "who": {"display": who}, "requestor": true}],
        "source": {"observer": {"display": gateway_id}},
        "entity": [{"what": {"reference": patient_ref}}],
    });
    if a.break_glass {
        e["purposeOfEvent"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT", "display": "Emergency Treatment"}]}]);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_ids_become_fhir_ids() {
        assert_eq!(fhir_id("rec_PSllBq-Pm4A"), "rec.PSllBq-Pm4A");
        assert_eq!(fhir_id("P7VPDKGEBN9"), "P7VPDKGEBN9");
        assert!(fhir_id(&"x".repeat(100)).len() == 64);
    }
}
