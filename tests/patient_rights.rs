//! Patients' rights (FLOW-9, FLOW-4) end to end on SQLite and PostgreSQL:
//! a record entered by an assistant and confirmed by the doctor's card, a
//! note at another institution, then the patient over TLS — disclosure of
//! everything held (records with who entered and confirmed them, and who
//! accessed them: institution and role only) as JSON and as a FHIR R4
//! Bundle that an independent FHIR model parses and whose Provenance
//! signature OpenSSL verifies over the bundled document; correction
//! requests answered by the record's institution with a new record (the old
//! one unchanged) or a reason; and the suspension of use, honoured from
//! the next staff read.

use std::path::Path;

use anyhow::{Context, Result};
use hpki_e2e::{
    World, WorldOptions, insert_card, ok, on_postgres, private_pcscd, python_json, session, signed_attributes,
    signed_confirm,
};
use hpki_profile::Profession;
use serde_json::{Value, json};

const CLINIC: &str = "Kanazawa Clinic";
const OTHER: &str = "Noto Hospital";

fn refused(answer: (u16, Value), code: &str) {
    let (status, body) = answer;
    assert!(status >= 400 && body["error"] == code, "expected {code}, got {status}: {body}");
}

/// The FHIR bundle parsed by `fhir.resources` (tests/python/check_fhir.py).
fn check_fhir(bundle: &Value, dir: &Path) -> Result<Value> {
    let path = dir.join("disclosure.fhir.json");
    std::fs::write(&path, serde_json::to_vec_pretty(bundle)?)?;
    python_json("check_fhir.py", &[path.as_os_str(), dir.as_os_str()])
}

async fn rights(world: &mut World) -> Result<()> {
    let desk = world.terminal(CLINIC, "desk-1")?;
    let ward = world.terminal(OTHER, "ward-1")?;
    let assistant_image = world.assistant_card(CLINIC, "A-301").await?;
    let assistant = format!("{CLINIC}/A-301");
    let (doctor_image, doctor) = world.person_card(Profession::Doctor, "730001", CLINIC).await?;
    let (noto_image, noto_doctor) = world.person_card(Profession::Doctor, "730002", OTHER).await?;
    world.link(&assistant, &doctor).await?;
    let pcscd = private_pcscd()?;
    let mut a_slot = Some(insert_card(&pcscd, 0, &assistant_image)?);
    let mut d_slot = insert_card(&pcscd, 1, &doctor_image)?;

    // At the clinic: the assistant enters, the doctor confirms with the card.
    let mut clinic = world.connect(&desk).await?;
    let a = session(&mut clinic, &mut a_slot.as_mut().context("card")?.card).await?;
    let p = ok(clinic
        .post(
            "/v1/patients",
            &json!({"name": "Sato Emi", "name_kanji": "佐藤 恵美", "birth_date": "1972-09-30"}),
            Some(&a),
        )
        .await?);
    let pid = p["id"].as_str().context("patient id")?.to_owned();
    let enc = ok(clinic.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?);
    let content = json!({"type": "prescription", "drug": "アムロジピン 5mg", "days": 28});
    let draft = ok(clinic
        .post("/v1/drafts", &json!({"encounter": enc["id"], "doctor": doctor, "content": content}), Some(&a))
        .await?);
    let did = draft["id"].as_str().context("draft id")?.to_owned();
    let d = session(&mut clinic, &mut d_slot.card).await?;
    let signing = ok(signed_attributes(&mut clinic, &mut d_slot.card, &did, None, &d).await?);
    let confirm = signed_confirm(&mut d_slot.card, &signing)?;
    let record = ok(clinic.post(&format!("/v1/drafts/{did}/confirm"), &confirm, Some(&d)).await?);
    let rid = record["id"].as_str().context("record id")?.to_owned();
    let before = world.gw.store.record(&rid).await?.context("record stored")?;

    // At Noto Hospital: a note, and a read that the disclosure must show.
    drop(a_slot.take());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut n_slot = insert_card(&pcscd, 0, &noto_image)?;
    let mut noto = world.connect(&ward).await?;
    let n = session(&mut noto, &mut n_slot.card).await?;
    let enc2 = ok(noto.post("/v1/encounters", &json!({"patient": pid}), Some(&n)).await?);
    let note = ok(noto
        .post("/v1/notes", &json!({"encounter": enc2["id"], "content": {"text": "血圧 132/84"}}), Some(&n))
        .await?);
    let note_id = note["id"].as_str().context("note id")?.to_owned();
    let initial = world.enroll_patient(&pid, CLINIC)?;
    let seen = ok(noto.get(&format!("/v1/patients/{pid}/records"), Some(&n)).await?);
    assert_eq!(seen["records"].as_array().map(Vec::len), Some(2), "consented clinic record and own note: {seen}");

    // The patient signs in over TLS; nothing before the password change.
    let mut portal = hpki_e2e::PatientClient::new(world)?;
    let s = ok(portal.request("POST", "/p/v1/login", Some(&json!({"id": pid, "password": initial}))).await?);
    portal.token = s["session"].as_str().map(str::to_owned);
    refused(portal.request("GET", "/p/v1/disclosure", None).await?, "password_change_required");
    let (status, _) = portal
        .request("POST", "/p/v1/password", Some(&json!({"current": initial, "new": "shiro-no-tsuki-2026"})))
        .await?;
    assert_eq!(status, 204);

    // Disclosure: every record (the Noto note too: it is the patient's own,
    // consent or not), who entered and confirmed it, who accessed them.
    let disclosure = ok(portal.request("GET", "/p/v1/disclosure", None).await?);
    assert_eq!(disclosure["patient"]["name_kanji"], "佐藤 恵美");
    let recs = disclosure["records"].as_array().context("records")?;
    assert_eq!(recs.len(), 2, "{disclosure}");
    let signed = recs.iter().find(|r| r["record"]["id"] == rid.as_str()).context("the confirmed record")?;
    assert_eq!(
        (signed["entered_by"]["id"].as_str(), signed["entered_by"]["role"].as_str()),
        (Some(assistant.as_str()), Some("assistant"))
    );
    assert_eq!(
        (signed["confirmed_by"]["id"].as_str(), signed["confirmed_by"]["role"].as_str()),
        (Some(doctor.as_str()), Some("doctor"))
    );
    let accesses = disclosure["accesses"].as_array().context("accesses")?;
    assert!(
        accesses.iter().any(|a| a["action"] == "records.read" && a["institution"] == OTHER && a["role"] == "doctor"),
        "the Noto read is listed by institution and role: {accesses:?}"
    );
    let text = serde_json::to_string(accesses)?;
    assert!(!text.contains(&noto_doctor) && !text.contains(&doctor), "accesses name no person: {text}");

    // The same as FHIR R4, checked by an independent model, and the
    // signature in the Provenance verified by OpenSSL over the document.
    let bundle = ok(portal.request("GET", "/p/v1/disclosure/fhir", None).await?);
    let dir = world.path("fhir");
    std::fs::create_dir_all(&dir)?;
    let summary = check_fhir(&bundle, &dir)?;
    assert_eq!(summary["type"], "collection");
    assert_eq!(
        (summary["resources"]["Patient"].as_u64(), summary["resources"]["DocumentReference"].as_u64()),
        (Some(1), Some(2)),
        "{summary}"
    );
    assert_eq!(summary["resources"]["Provenance"].as_u64(), Some(2), "{summary}");
    assert!(summary["resources"]["AuditEvent"].as_u64().unwrap_or(0) >= 2, "{summary}");
    let provs = summary["provenance"].as_array().context("provenance")?;
    let prov = provs.iter().find(|p| !p["signature"].is_null()).context("the signed record's Provenance")?;
    assert_eq!(prov["agents"], json!([["enterer", assistant], ["verifier", doctor]]), "{prov}");
    assert_eq!(
        (prov["signature"]["type"].as_str(), prov["signature"]["sig_format"].as_str()),
        (Some("1.2.840.10065.1.12.1.5"), Some("application/pkcs7-signature"))
    );
    let note_prov = provs.iter().find(|p| p["signature"].is_null()).context("the note's Provenance")?;
    assert_eq!(note_prov["agents"], json!([["author", noto_doctor]]));
    let root_pem = world.path("root.pem");
    let der = std::fs::read(world.path("root.der"))?;
    std::fs::write(&root_pem, pem_of("CERTIFICATE", &der))?;
    let out = std::process::Command::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-out", "/dev/null", "-in"])
        .arg(prov["signature"]["file"].as_str().context("file")?)
        .arg("-content")
        .arg(prov["signature"]["document"].as_str().context("document")?)
        .arg("-CAfile")
        .arg(&root_pem)
        .output()?;
    assert!(out.status.success(), "openssl cms -verify: {}", String::from_utf8_lossy(&out.stderr));

    // Correction requests: specific refusals, then one accepted and one
    // rejected by the clinic's staff; Noto's staff never see them.
    refused(
        portal.request("POST", "/p/v1/corrections", Some(&json!({"record": "rec_nothing", "text": "x"}))).await?,
        "not_found",
    );
    refused(
        portal.request("POST", "/p/v1/corrections", Some(&json!({"record": rid, "text": "  "}))).await?,
        "bad_request",
    );
    let c1 = ok(portal
        .request("POST", "/p/v1/corrections", Some(&json!({"record": rid, "text": "28日分ではなく14日分でした"})))
        .await?);
    let c2 = ok(portal
        .request("POST", "/p/v1/corrections", Some(&json!({"record": rid, "text": "薬の名前が違う気がします"})))
        .await?);
    let (c1, c2) = (c1["id"].as_str().context("id")?.to_owned(), c2["id"].as_str().context("id")?.to_owned());
    assert_eq!(ok(noto.get("/v1/corrections", Some(&n)).await?)["corrections"], json!([]));
    refused(
        noto.post(&format!("/v1/corrections/{c1}/resolve"), &json!({"decision": "accepted", "text": "x"}), Some(&n))
            .await?,
        "unknown_correction",
    );
    let queue = ok(clinic.get("/v1/corrections", Some(&d)).await?);
    assert_eq!(queue["corrections"].as_array().map(Vec::len), Some(2), "{queue}");
    assert_eq!(queue["corrections"][0]["patient"], pid.as_str());
    let accepted = ok(clinic
        .post(
            &format!("/v1/corrections/{c1}/resolve"),
            &json!({"decision": "accepted", "text": "処方日数を14日に訂正"}),
            Some(&d),
        )
        .await?);
    let fix = accepted["correction_record"].as_str().context("correcting record")?.to_owned();
    refused(
        clinic
            .post(&format!("/v1/corrections/{c1}/resolve"), &json!({"decision": "rejected", "text": "x"}), Some(&d))
            .await?,
        "correction_answered",
    );
    ok(clinic
        .post(
            &format!("/v1/corrections/{c2}/resolve"),
            &json!({"decision": "rejected", "text": "処方どおりの薬剤名です"}),
            Some(&d),
        )
        .await?);
    let mine = ok(portal.request("GET", "/p/v1/corrections", None).await?);
    let status_of = |id: &str| mine["corrections"].as_array().and_then(|c| c.iter().find(|x| x["id"] == id).cloned());
    assert_eq!(status_of(&c1).context("c1")?["status"], "accepted");
    assert_eq!(status_of(&c2).context("c2")?["resolution"], "処方どおりの薬剤名です");
    let records = ok(portal.request("GET", "/p/v1/records", None).await?);
    let fixed = records["records"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["id"] == fix.as_str()).cloned())
        .context("the correction")?;
    assert_eq!(
        (fixed["kind"].as_str(), fixed["content"]["corrects"].as_str()),
        (Some("correction"), Some(rid.as_str()))
    );
    let after = world.gw.store.record(&rid).await?.context("old record")?;
    assert_eq!((after.content, after.signature), (before.content, before.signature), "the record itself is unchanged");
    let bundle = ok(portal.request("GET", "/p/v1/disclosure/fhir", None).await?);
    let summary = check_fhir(&bundle, &dir)?;
    let fix_doc = summary["documents"]
        .as_object()
        .and_then(|d| d.values().find(|v| v["identifier"] == fix.as_str()).cloned())
        .context("the correction in FHIR")?;
    assert_eq!(fix_doc["relates_to"][0], format!("DocumentReference/{}", hpki_gateway::domain::fhir::fhir_id(&rid)));

    // Suspension of use: sharing the clinic's records stopped by the
    // patient holds from Noto's next read; restored, they are back.
    ok(portal.request("POST", "/p/v1/consents", Some(&json!({"institution": CLINIC, "share": false}))).await?);
    let seen = ok(noto.get(&format!("/v1/patients/{pid}/records"), Some(&n)).await?);
    let ids: Vec<&str> = seen["records"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, [note_id.as_str()], "only Noto's own note once sharing stopped");
    refused(
        portal.request("POST", "/p/v1/consents", Some(&json!({"institution": CLINIC, "share": false}))).await?,
        "not_found",
    );
    let consents =
        ok(portal.request("POST", "/p/v1/consents", Some(&json!({"institution": CLINIC, "share": true}))).await?);
    assert!(
        consents["consents"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x["institution"] == CLINIC && x["shared"] == true)),
        "{consents}"
    );
    let seen = ok(noto.get(&format!("/v1/patients/{pid}/records"), Some(&n)).await?);
    assert_eq!(seen["records"].as_array().map(Vec::len), Some(3), "clinic record, its correction, the note: {seen}");
    let change = world.last_audit("patient.consent.change").await;
    assert_eq!((change.event.outcome.as_str(), change.event.actor.clone()), ("ok", format!("patient:{pid}")));
    // Read-only operation refuses the patient's changes too, reads go on.
    hpki_e2e::gateway_cli(
        &world.config_path(),
        &["admin", "mode", "read-only", "--reason", "maintenance", "--operator", "sato-it"],
    )?;
    refused(
        portal.request("POST", "/p/v1/corrections", Some(&json!({"record": rid, "text": "もう一件"}))).await?,
        "read_only_mode",
    );
    refused(
        portal.request("POST", "/p/v1/consents", Some(&json!({"institution": CLINIC, "share": false}))).await?,
        "read_only_mode",
    );
    ok(portal.request("GET", "/p/v1/disclosure", None).await?);
    hpki_e2e::gateway_cli(
        &world.config_path(),
        &["admin", "mode", "normal", "--reason", "done", "--operator", "sato-it"],
    )?;
    assert!(world.outbox_once_cleaned().await?.is_empty(), "every change has its entry");
    assert!(world.chain_verifies().await);
    Ok(())
}

fn pem_of(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_rights_flow_9_on_sqlite() -> Result<()> {
    let mut world = World::start(WorldOptions { patients: true, ..Default::default() }).await?;
    rights(&mut world).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_rights_flow_9_on_postgres() -> Result<()> {
    on_postgres(WorldOptions { patients: true, ..Default::default() }, async |world| rights(world).await).await
}
