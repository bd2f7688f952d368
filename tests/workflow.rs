//! Assistant input, doctor confirm (FLOW-1…3) end to end: virtual cards in a
//! private pcscd, mutual TLS to the in-process gateway, the signature
//! application of the doctor's card, and the store — SQLite and a real
//! PostgreSQL server.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use hpki_card::{Application, HpkiCard, Pin, RSA_2048_BYTES, sha256};
use hpki_e2e::{
    CardSlot, PIN, PgDatabase, TerminalClient, World, WorldOptions, insert_card, ok, private_pcscd, refused, session,
    signed_confirm,
};
use hpki_profile::Profession;
use serde_json::{Value, json};
use testbed::PrivatePcscd;

const CLINIC: &str = "Kanazawa Clinic";
const OTHER: &str = "Noto Hospital";

type Slot = CardSlot;

fn insert(pcscd: &PrivatePcscd, slot: u8, image: &Path) -> Result<Slot> {
    insert_card(pcscd, slot, image)
}

/// Swaps the card in slot 1 (two slots per private pcscd).
fn swap(pcscd: &PrivatePcscd, slot: &mut Option<Slot>, image: &Path) -> Result<()> {
    *slot = None;
    std::thread::sleep(Duration::from_millis(500));
    *slot = Some(insert(pcscd, 1, image)?);
    Ok(())
}

async fn review(client: &mut TerminalClient, draft: &str, token: &str) -> Result<Value> {
    Ok(ok(client.get(&format!("/v1/drafts/{draft}/signing-bytes"), Some(token)).await?))
}

/// The signed attributes for `card`'s signature certificate, as the agent
/// asks before the card signs.
async fn signing_for(client: &mut TerminalClient, card: &mut HpkiCard, draft: &str, token: &str) -> Result<Value> {
    Ok(ok(hpki_e2e::signed_attributes(client, card, draft, None, token).await?))
}

/// The whole story on one store: patient, encounter, draft, edit, queue,
/// review, confirm with the signature PIN, idempotent retry, batch, read.
async fn whole_story(world: &mut World) -> Result<()> {
    let creds = world.terminal(CLINIC, "desk-1")?;
    let assistant_image = world.assistant_card(CLINIC, "A-001").await?;
    let assistant = format!("{CLINIC}/A-001");
    let (doctor_image, doctor) = world.person_card(Profession::Doctor, "200001", CLINIC).await?;
    world.link(&assistant, &doctor).await?;
    let pcscd = private_pcscd()?;
    let mut a_slot = insert(&pcscd, 0, &assistant_image)?;
    let mut d_slot = insert(&pcscd, 1, &doctor_image)?;

    let mut client = world.connect(&creds).await?;
    let a = session(&mut client, &mut a_slot.card).await?;
    let patient = ok(client
        .post(
            "/v1/patients",
            &json!({"name": "Yamada Hanako", "name_kanji": "山田 花子", "birth_date": "1950-04-01"}),
            Some(&a),
        )
        .await?);
    let pid = patient["id"].as_str().context("patient id")?.to_owned();
    assert!(pid.starts_with('P') && pid.len() == 11, "{pid}");
    let enc = ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?);
    assert_eq!(enc["institution"], CLINIC);
    let content = json!({"type": "vital_signs", "blood_pressure": "128/82", "note": "血圧やや高め"});
    let draft = ok(client
        .post("/v1/drafts", &json!({"encounter": enc["id"], "doctor": doctor, "content": content}), Some(&a))
        .await?);
    let did = draft["id"].as_str().context("draft id")?.to_owned();
    assert_eq!((draft["version"].as_i64(), draft["status"].as_str()), (Some(1), Some("pending")));
    // What the assistant's screen lists: the linked doctors, the own drafts.
    let linked = ok(client.get("/v1/doctors", Some(&a)).await?);
    assert_eq!(linked["doctors"].as_array().map(Vec::len), Some(1), "{linked}");
    assert_eq!(
        (linked["doctors"][0]["id"].as_str(), linked["doctors"][0]["role"].as_str()),
        (Some(doctor.as_str()), Some("doctor"))
    );
    let mine = ok(client.get("/v1/drafts", Some(&a)).await?);
    assert_eq!(mine["drafts"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["drafts"][0]["id"], did.as_str());
    let edited = json!({"type": "vital_signs", "blood_pressure": "126/80", "note": "再測定"});
    let v2 = ok(client.put(&format!("/v1/drafts/{did}"), &json!({"version": 1, "content": edited}), Some(&a)).await?);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["content"], edited);
    // The content is stored sealed, not in the clear (DATA-1).
    let raw = world.gw.store.draft(&did).await?.context("draft row")?;
    assert!(!String::from_utf8_lossy(&raw.content).contains("再測定"));
    assert_eq!(raw.key_id, world.gw.keys().current());

    // The doctor: queue, exact bytes, signature PIN, confirm.
    let d = session(&mut client, &mut d_slot.card).await?;
    refused(world, client.get("/v1/doctors", Some(&d)).await?, "doctors.read_linked", "not_permitted").await;
    let queue = ok(client.get("/v1/queue", Some(&d)).await?);
    assert_eq!(queue["drafts"].as_array().map(Vec::len), Some(1), "{queue}");
    assert_eq!(queue["drafts"][0]["id"], did.as_str());
    assert_eq!(queue["drafts"][0]["content"], edited);
    let signing = review(&mut client, &did, &d).await?;
    assert_eq!(signing["version"], 2);
    let bytes = base64_decode(&signing["document"])?;
    let doc = hpki_protocol::ConfirmDocument::from_canonical(&bytes)?;
    assert_eq!(
        (doc.content.clone(), doc.signer.as_str(), doc.assistant.as_str()),
        (edited.clone(), doctor.as_str(), assistant.as_str())
    );
    assert_eq!(signing["sha256"].as_str(), Some(hex(&sha256(&bytes)).as_str()));
    // What the card signs: CAdES signed attributes over exactly those bytes.
    let attributes = signing_for(&mut client, &mut d_slot.card, &did, &d).await?;
    assert_eq!(attributes["document"], signing["document"]);
    // A confirm without them (a bare signature over the document, as before
    // CAdES) is refused and changes nothing.
    let bare = d_slot.card.sign_sha256(Application::Signature, &Pin::new(PIN)?, &sha256(&bytes), RSA_2048_BYTES)?;
    let cert_b64 = base64_encode(&d_slot.card.read_certificate(Application::Signature)?);
    let bare = json!({"version": 2, "certificate": cert_b64, "signature": base64_encode(&bare)});
    refused(
        world,
        client.post(&format!("/v1/drafts/{did}/confirm"), &bare, Some(&d)).await?,
        "draft.confirm",
        "bad_signed_attributes",
    )
    .await;
    let body = signed_confirm(&mut d_slot.card, &attributes)?;
    let record = ok(client.post(&format!("/v1/drafts/{did}/confirm"), &body, Some(&d)).await?);
    assert_eq!(record["kind"], "medical");
    assert_eq!(record["content"], edited);
    assert_eq!(
        (record["author"].as_str(), record["signer"].as_str()),
        (Some(assistant.as_str()), Some(doctor.as_str()))
    );
    assert_eq!(record["institution"], CLINIC);
    assert_eq!(record["origin_reference"], format!("draft:{did}"));
    assert_eq!(record["document_sha256"], signing["sha256"]);
    assert!(record["signature_format"].as_str().is_some_and(|f| f.starts_with("CAdES B-")), "{record}");
    let evidence = record["revocation"].as_array().context("revocation evidence")?;
    assert!(evidence.iter().any(|e| e["issuer"].as_str().is_some_and(|i| i.contains("SignCA"))), "{evidence:?}");
    // Idempotent: the same confirm again gives the same record, no second one.
    let again = ok(client.post(&format!("/v1/drafts/{did}/confirm"), &body, Some(&d)).await?);
    assert_eq!(again["id"], record["id"]);
    let stored = world.gw.store.records_of(&raw.patient).await?;
    assert_eq!(stored.len(), 1);
    assert!(!String::from_utf8_lossy(&stored[0].content).contains("再測定"));
    // The signature value and certificate are kept once, in the container.
    assert_eq!((stored[0].signature.as_deref(), stored[0].signature_cert.as_deref()), (None, None));
    let containers = world.gw.store.record_signatures(&stored[0].id).await?;
    let opened = hpki_cades::open(&containers.first().context("container")?.container, &bytes)?;
    assert_eq!(opened.signature.len(), 256);
    assert!(ok(client.get("/v1/queue", Some(&d)).await?)["drafts"].as_array().is_some_and(Vec::is_empty));

    // Batch: two drafts, one PIN entry at the desk, a signature each.
    let mut ids = Vec::new();
    for n in 0..2 {
        let c = json!({"type": "order", "item": format!("検査 {n}")});
        let dr = ok(client
            .post("/v1/drafts", &json!({"encounter": enc["id"], "doctor": doctor, "content": c}), Some(&a))
            .await?);
        ids.push(dr["id"].as_str().context("id")?.to_owned());
    }
    let pin = Pin::new(PIN)?;
    let mut items = Vec::new();
    let mut cert = String::new();
    for id in &ids {
        let s = signing_for(&mut client, &mut d_slot.card, id, &d).await?;
        let attrs = hpki_cades::SignedAttributes::parse(&base64_decode(&s["signed_attributes"])?)?;
        let sig = d_slot.card.sign_sha256(Application::Signature, &pin, &attrs.digest(), RSA_2048_BYTES)?;
        cert = base64_encode(&d_slot.card.read_certificate(Application::Signature)?);
        items.push(json!({"draft": id, "version": s["version"], "signed_attributes": s["signed_attributes"],
            "signature": base64_encode(&sig)}));
    }
    let batch = ok(client.post("/v1/confirm-batch", &json!({"certificate": cert, "items": items}), Some(&d)).await?);
    let results = batch["results"].as_array().context("results")?;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r["record"]["signer"] == doctor.as_str() && r["error"].is_null()), "{batch}");

    // The doctor reads the patient's records within the encounter.
    let records = ok(client.get(&format!("/v1/patients/{pid}/records"), Some(&d)).await?);
    assert_eq!(records["records"].as_array().map(Vec::len), Some(3), "{records}");
    let first = records["records"].as_array().and_then(|r| r.iter().find(|r| r["id"] == record["id"]));
    assert_eq!(first.map(|r| &r["content"]), Some(&edited), "{records}");

    let confirm = world.last_audit("draft.confirm").await;
    assert_eq!((confirm.event.actor.as_str(), confirm.event.outcome.as_str()), (doctor.as_str(), "ok"));
    assert!(confirm.event.object.contains(&did) && confirm.event.object.contains("record:"));
    assert!(world.chain_verifies().await);
    // Every change staged its entry and every staged row was cleared once
    // the entry was in the chain (LOG-1, the audit outbox).
    assert_eq!(world.outbox_once_cleaned().await?, []);
    Ok(())
}

fn base64_decode(v: &Value) -> Result<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.decode(v.as_str().context("base64 string")?)?)
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_story_on_sqlite() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    whole_story(&mut world).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_story_on_postgres() -> Result<()> {
    let db = PgDatabase::create().await?;
    let result = async {
        let mut world = World::start(WorldOptions { postgres: Some(db.url.clone()), ..Default::default() }).await?;
        let r = whole_story(&mut world).await;
        world.gw.store.close().await;
        r
    }
    .await;
    db.drop_db().await;
    result
}

/// Every refusal of the workflow, each with its reason in the answer and in
/// the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_each_with_its_reason() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let assistant_image = world.assistant_card(CLINIC, "A-002").await?;
    let assistant = format!("{CLINIC}/A-002");
    let (d1_image, d1) = world.person_card(Profession::Doctor, "300001", CLINIC).await?;
    let (d2_image, d2) = world.person_card(Profession::Doctor, "300002", CLINIC).await?;
    let (ph_image, _) = world.person_card(Profession::Pharmacist, "300003", CLINIC).await?;
    let (nurse_image, nurse) = world.person_card(Profession::Nurse, "300004", CLINIC).await?;
    world.link(&assistant, &d1).await?;
    let pcscd = private_pcscd()?;
    let mut a_slot = insert(&pcscd, 0, &assistant_image)?;
    let mut slot = Some(insert(&pcscd, 1, &d1_image)?);
    let mut client = world.connect(&creds).await?;
    let a = session(&mut client, &mut a_slot.card).await?;
    let d1_token = session(&mut client, &mut slot.as_mut().context("slot")?.card).await?;

    let pid = ok(client
        .post("/v1/patients", &json!({"name": "Sato Jiro", "birth_date": "1961-11-03"}), Some(&a))
        .await?)["id"]
        .as_str()
        .context("id")?
        .to_owned();
    // Bad input changes nothing.
    refused(
        &world,
        client.post("/v1/patients", &json!({"name": "X", "birth_date": "1961-13-40"}), Some(&a)).await?,
        "patient.register",
        "invalid_birth_date",
    )
    .await;
    refused(
        &world,
        client.request("POST", "/v1/drafts", b"{not json".to_vec(), Some(&a)).await?,
        "draft.create",
        "malformed_json",
    )
    .await;

    // No encounter yet: no draft, no reading.
    let enc = ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?);
    let new_draft = |doctor: &str| json!({"encounter": enc["id"], "doctor": doctor, "content": {"text": "処方 A"}});
    // FLOW-1: only for a linked doctor.
    refused(&world, client.post("/v1/drafts", &new_draft(&d2), Some(&a)).await?, "draft.create", "not_linked").await;
    let draft = ok(client.post("/v1/drafts", &new_draft(&d1), Some(&a)).await?);
    let did = draft["id"].as_str().context("id")?.to_owned();
    let confirm_path = format!("/v1/drafts/{did}/confirm");

    // The assistant never confirms (own signature certificate or not).
    let signing_v1 = signing_for(&mut client, &mut slot.as_mut().context("slot")?.card, &did, &d1_token).await?;
    let d1_body_v1 = signed_confirm(&mut slot.as_mut().context("slot")?.card, &signing_v1)?;
    refused(&world, client.post(&confirm_path, &d1_body_v1, Some(&a)).await?, "draft.confirm", "not_permitted").await;

    // Content changed after review: the doctor signed version 1's bytes; the
    // assistant edits; confirming as version 2 with that signature fails,
    // and as version 1 is stale.
    ok(client
        .put(&format!("/v1/drafts/{did}"), &json!({"version": 1, "content": {"text": "処方 B"}}), Some(&a))
        .await?);
    refused(&world, client.post(&confirm_path, &d1_body_v1, Some(&d1_token)).await?, "draft.confirm", "stale_version")
        .await;
    let mut relabelled = d1_body_v1.clone();
    relabelled["version"] = json!(2);
    refused(
        &world,
        client.post(&confirm_path, &relabelled, Some(&d1_token)).await?,
        "draft.confirm",
        "signature_invalid",
    )
    .await;
    // Editing a stale version is refused too.
    refused(
        &world,
        client.put(&format!("/v1/drafts/{did}"), &json!({"version": 1, "content": {"text": "C"}}), Some(&a)).await?,
        "draft.edit",
        "stale_version",
    )
    .await;

    // The authentication key is not a signature key (nonRepudiation).
    {
        let card = &mut slot.as_mut().context("slot")?.card;
        let auth_cert = card.read_certificate(Application::Authentication)?;
        let ask = json!({"version": 2, "certificate": base64_encode(&auth_cert)});
        let s = ok(client.post(&format!("/v1/drafts/{did}/signed-attributes"), &ask, Some(&d1_token)).await?);
        let attrs = hpki_cades::SignedAttributes::parse(&base64_decode(&s["signed_attributes"])?)?;
        let sig = card.sign_sha256(Application::Authentication, &Pin::new(PIN)?, &attrs.digest(), RSA_2048_BYTES)?;
        let body = json!({"version": 2, "certificate": base64_encode(&auth_cert),
            "signed_attributes": s["signed_attributes"], "signature": base64_encode(&sig)});
        let (status, answer) = client.post(&confirm_path, &body, Some(&d1_token)).await?;
        assert_eq!(status, 401, "{answer}");
        let code = answer["error"].as_str().unwrap_or_default().to_owned();
        assert!(code.contains("key_usage") || code.contains("policy"), "{answer}");
        assert_eq!(world.last_audit("draft.confirm").await.event.reason, code);
    }

    // The signature certificate of another person: doctor 2 signs doctor
    // 1's draft, doctor 1's session sends it.
    swap(&pcscd, &mut slot, &d2_image)?;
    let d2_token = session(&mut client, &mut slot.as_mut().context("slot")?.card).await?;
    // Asked for with doctor 1's session, for doctor 2's certificate.
    let signing_v2 = signing_for(&mut client, &mut slot.as_mut().context("slot")?.card, &did, &d1_token).await?;
    let d2_signed = signed_confirm(&mut slot.as_mut().context("slot")?.card, &signing_v2)?;
    refused(
        &world,
        client.post(&confirm_path, &d2_signed, Some(&d1_token)).await?,
        "draft.confirm",
        "signer_other_person",
    )
    .await;
    // Doctor 2 is not the doctor of this draft (not linked to its assistant).
    refused(&world, client.post(&confirm_path, &d2_signed, Some(&d2_token)).await?, "draft.confirm", "not_your_draft")
        .await;
    refused(
        &world,
        client.get(&format!("/v1/drafts/{did}/signing-bytes"), Some(&d2_token)).await?,
        "draft.review",
        "not_your_draft",
    )
    .await;
    // A version that is not a number is bad input, not a stale version.
    refused(
        &world,
        client.get(&format!("/v1/drafts/{did}/signing-bytes?version=two"), Some(&d1_token)).await?,
        "draft.review",
        "malformed_request",
    )
    .await;

    // The pharmacist confirms a medical draft: never. Their own dispensing
    // record, signed with their own card: yes.
    swap(&pcscd, &mut slot, &ph_image)?;
    let ph_token = session(&mut client, &mut slot.as_mut().context("slot")?.card).await?;
    refused(&world, client.post(&confirm_path, &d2_signed, Some(&ph_token)).await?, "draft.confirm", "not_permitted")
        .await;
    refused(
        &world,
        client.post("/v1/drafts", &new_draft(&d1), Some(&ph_token)).await?,
        "draft.create",
        "not_permitted",
    )
    .await;
    let disp = ok(client
        .post(
            "/v1/dispensing",
            &json!({"encounter": enc["id"], "content": {"drug": "アムロジピン 5mg", "days": 28}}),
            Some(&ph_token),
        )
        .await?);
    let disp_id = disp["id"].as_str().context("id")?.to_owned();
    let s = signing_for(&mut client, &mut slot.as_mut().context("slot")?.card, &disp_id, &ph_token).await?;
    let body = signed_confirm(&mut slot.as_mut().context("slot")?.card, &s)?;
    let rec = ok(client.post(&format!("/v1/drafts/{disp_id}/confirm"), &body, Some(&ph_token)).await?);
    assert_eq!(rec["kind"], "dispensing");

    // A nurse reads within the encounter and adds notes, never confirms.
    swap(&pcscd, &mut slot, &nurse_image)?;
    let n_token = session(&mut client, &mut slot.as_mut().context("slot")?.card).await?;
    let note = ok(client
        .post("/v1/notes", &json!({"encounter": enc["id"], "content": {"text": "転倒リスク評価済"}}), Some(&n_token))
        .await?);
    assert_eq!((note["kind"].as_str(), note["author"].as_str()), (Some("note"), Some(nurse.as_str())));
    refused(&world, client.post(&confirm_path, &d2_signed, Some(&n_token)).await?, "draft.confirm", "not_permitted")
        .await;
    let read = ok(client.get(&format!("/v1/patients/{pid}/records"), Some(&n_token)).await?);
    assert_eq!(read["records"].as_array().map(Vec::len), Some(2), "{read}");
    refused(&world, client.get("/v1/queue", Some(&n_token)).await?, "queue.read", "not_permitted").await;

    // Outside the encounter: no reading, no confirming, no new draft — but
    // the assistant may still correct a pending draft (FLOW-3).
    ok(client
        .post(&format!("/v1/encounters/{}/close", enc["id"].as_str().context("id")?), &json!({}), Some(&a))
        .await?);
    refused(
        &world,
        client.get(&format!("/v1/patients/{pid}/records"), Some(&n_token)).await?,
        "records.read",
        "no_open_encounter",
    )
    .await;
    refused(&world, client.post("/v1/drafts", &new_draft(&d1), Some(&a)).await?, "draft.create", "no_open_encounter")
        .await;
    let v3 = ok(client
        .put(&format!("/v1/drafts/{did}"), &json!({"version": 2, "content": {"text": "処方 B'"}}), Some(&a))
        .await?);
    assert_eq!(v3["version"], 3);
    swap(&pcscd, &mut slot, &d1_image)?;
    let signing_v3 = signing_for(&mut client, &mut slot.as_mut().context("slot")?.card, &did, &d1_token).await?;
    let body = signed_confirm(&mut slot.as_mut().context("slot")?.card, &signing_v3)?;
    refused(&world, client.post(&confirm_path, &body, Some(&d1_token)).await?, "draft.confirm", "no_open_encounter")
        .await;
    // Encounters expire by themselves (default 4 hours).
    let enc2 = ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?);
    assert_ne!(enc2["id"], enc["id"]);
    world.clock.advance_secs(4 * 3600 + 1);
    // Sessions idle out after 5 minutes: log in again after the jump.
    let d1_token = session(&mut client, &mut slot.as_mut().context("slot")?.card).await?;
    refused(&world, client.post(&confirm_path, &body, Some(&d1_token)).await?, "draft.confirm", "no_open_encounter")
        .await;
    // With an open encounter it goes through; the unlinked doctor case:
    // after the link ends, the pending draft cannot be confirmed.
    let a = session(&mut client, &mut a_slot.card).await?;
    ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?);
    world.gw.store.unlink_assistant(&assistant, &d1, None).await?;
    refused(&world, client.post(&confirm_path, &body, Some(&d1_token)).await?, "draft.confirm", "not_linked").await;
    world.link(&assistant, &d1).await?;
    // The attributes were signed before the four-hour jump: their
    // signingTime is too old to stand for "now" (DATA-4), so sign afresh.
    refused(
        &world,
        client.post(&confirm_path, &body, Some(&d1_token)).await?,
        "draft.confirm",
        "signed_attributes_stale",
    )
    .await;
    let signing_v3 = signing_for(&mut client, &mut slot.as_mut().context("slot")?.card, &did, &d1_token).await?;
    let body = signed_confirm(&mut slot.as_mut().context("slot")?.card, &signing_v3)?;
    let rec = ok(client.post(&confirm_path, &body, Some(&d1_token)).await?);
    assert_eq!(rec["content"], json!({"text": "処方 B'"}));
    // Once a record, a draft is not edited.
    refused(
        &world,
        client.put(&format!("/v1/drafts/{did}"), &json!({"version": 3, "content": {"text": "D"}}), Some(&a)).await?,
        "draft.edit",
        "already_confirmed",
    )
    .await;

    // Nothing refused left a record behind: two records of this draft's
    // patient from confirms, one dispensing, one note.
    let raw = world.gw.store.draft(&did).await?.context("draft")?;
    let mut kinds: Vec<String> = world.gw.store.records_of(&raw.patient).await?.into_iter().map(|r| r.kind).collect();
    kinds.sort();
    assert_eq!(kinds, ["dispensing", "medical", "note"]);
    assert!(world.chain_verifies().await);
    Ok(())
}

/// Consent (FLOW-4) also governs what other institutions' staff read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_institutions_read_only_consented_records() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let here = world.terminal(CLINIC, "desk-1")?;
    let there = world.terminal(OTHER, "ward-3")?;
    let (nurse_image, _) = world.person_card(Profession::Nurse, "400001", CLINIC).await?;
    let (nurse2_image, _) = world.person_card(Profession::Nurse, "400002", OTHER).await?;
    let pcscd = private_pcscd()?;
    let mut s0 = insert(&pcscd, 0, &nurse_image)?;
    let mut s1 = insert(&pcscd, 1, &nurse2_image)?;
    let mut c1 = world.connect(&here).await?;
    let n1 = session(&mut c1, &mut s0.card).await?;
    let pid =
        ok(c1.post("/v1/patients", &json!({"name": "Kato Yui", "birth_date": "1990-01-02"}), Some(&n1)).await?)["id"]
            .as_str()
            .context("id")?
            .to_owned();
    let enc = ok(c1.post("/v1/encounters", &json!({"patient": pid}), Some(&n1)).await?);
    ok(c1
        .post("/v1/notes", &json!({"encounter": enc["id"], "content": {"text": "アレルギー: ペニシリン"}}), Some(&n1))
        .await?);

    let mut c2 = world.connect(&there).await?;
    let n2 = session(&mut c2, &mut s1.card).await?;
    ok(c2.post("/v1/encounters", &json!({"patient": pid}), Some(&n2)).await?);
    let seen = ok(c2.get(&format!("/v1/patients/{pid}/records"), Some(&n2)).await?);
    assert_eq!(seen["records"].as_array().map(Vec::len), Some(0), "no consent, nothing shared: {seen}");
    world.gw.store.grant_consent(&pid, CLINIC, "support desk", 0, None).await?;
    let seen = ok(c2.get(&format!("/v1/patients/{pid}/records"), Some(&n2)).await?);
    assert_eq!(seen["records"][0]["content"]["text"], "アレルギー: ペニシリン");
    assert_eq!(seen["records"][0]["institution"], CLINIC);
    // An encounter of another institution is not theirs to close.
    refused(
        &world,
        c2.post(&format!("/v1/encounters/{}/close", enc["id"].as_str().context("id")?), &json!({}), Some(&n2)).await?,
        "encounter.close",
        "unknown_encounter",
    )
    .await;
    Ok(())
}

/// AUTH-4, AUTH-5, NET-2, FLOW-4: the patient listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_replaces_the_initial_password_and_sees_only_own_consented_records() -> Result<()> {
    let mut world = World::start(WorldOptions { patients: true, ..Default::default() }).await?;
    let here = world.terminal(CLINIC, "desk-1")?;
    let there = world.terminal(OTHER, "ward-1")?;
    let (doctor_image, _) = world.person_card(Profession::Doctor, "500001", CLINIC).await?;
    let (nurse_image, _) = world.person_card(Profession::Nurse, "500002", OTHER).await?;
    let pcscd = private_pcscd()?;
    let mut s0 = insert(&pcscd, 0, &doctor_image)?;
    let mut s1 = insert(&pcscd, 1, &nurse_image)?;
    let mut c = world.connect(&here).await?;
    let d = session(&mut c, &mut s0.card).await?;
    let mut patients = Vec::new();
    for name in ["Mori Aki", "Ueda Ken"] {
        let p = ok(c.post("/v1/patients", &json!({"name": name, "birth_date": "1980-05-05"}), Some(&d)).await?);
        let pid = p["id"].as_str().context("id")?.to_owned();
        let enc = ok(c.post("/v1/encounters", &json!({"patient": pid}), Some(&d)).await?);
        ok(c.post(
            "/v1/notes",
            &json!({"encounter": enc["id"], "content": {"text": format!("{name} の所見")}}),
            Some(&d),
        )
        .await?);
        patients.push(pid);
    }
    // A record of the first patient at another institution, never consented.
    let mut c2 = world.connect(&there).await?;
    let n = session(&mut c2, &mut s1.card).await?;
    let enc = ok(c2.post("/v1/encounters", &json!({"patient": patients[0]}), Some(&n)).await?);
    ok(c2.post("/v1/notes", &json!({"encounter": enc["id"], "content": {"text": "他院の記録"}}), Some(&n)).await?);

    let initial = world.enroll_patient(&patients[0], CLINIC)?;
    let stored = world.gw.store.account(&patients[0]).await?.context("account")?;
    assert!(stored.password_hash.starts_with("$argon2id$") && !stored.password_hash.contains(&initial));
    let enrolled = world.last_audit("admin.patient.enroll").await;
    assert_eq!(enrolled.event.actor, "admin:desk-clerk");

    let mut p = hpki_e2e::PatientClient::new(&world)?;
    let page = p.request("GET", "/", None).await?;
    assert_eq!(page.0, 200);
    assert!(page.1.as_str().is_some_and(|h| h.contains("わたしの診療記録")));
    let login = |id: &str, pw: &str| json!({"id": id, "password": pw});
    // Wrong password, unknown ID: the same answer.
    refused(
        &world,
        p.request("POST", "/p/v1/login", Some(&login(&patients[0], "nope-nope-nope"))).await?,
        "patient.login",
        "invalid_credentials",
    )
    .await;
    refused(
        &world,
        p.request("POST", "/p/v1/login", Some(&login("PNOSUCHPAT1", &initial))).await?,
        "patient.login",
        "invalid_credentials",
    )
    .await;
    // The initial password works only to replace itself.
    let s = ok(p.request("POST", "/p/v1/login", Some(&login(&patients[0], &initial))).await?);
    assert_eq!(s["must_change_password"], true);
    p.token = s["session"].as_str().map(str::to_owned);
    refused(&world, p.request("GET", "/p/v1/records", None).await?, "patient.records", "password_change_required")
        .await;
    refused(
        &world,
        p.request("POST", "/p/v1/password", Some(&json!({"current": initial, "new": "short"}))).await?,
        "patient.password",
        "weak_password",
    )
    .await;
    let chosen = "kanazawa-spring-2026";
    assert_eq!(p.request("POST", "/p/v1/password", Some(&json!({"current": initial, "new": chosen}))).await?.0, 204);
    let mine = ok(p.request("GET", "/p/v1/records", None).await?);
    let records = mine["records"].as_array().context("records")?;
    assert_eq!(records.len(), 1, "own, consented only: {mine}");
    assert_eq!(records[0]["content"]["text"], "Mori Aki の所見");
    assert_eq!(records[0]["institution"], CLINIC);
    // Consent to the other institution: its record appears.
    world.gw.store.grant_consent(&patients[0], OTHER, "support desk", 0, None).await?;
    let mine = ok(p.request("GET", "/p/v1/records", None).await?);
    assert_eq!(mine["records"].as_array().map(Vec::len), Some(2), "{mine}");
    assert!(!mine.to_string().contains("Ueda Ken"), "never another patient's record");
    assert_eq!(p.request("POST", "/p/v1/logout", None).await?.0, 204);
    refused(&world, p.request("GET", "/p/v1/records", None).await?, "patient.records", "session_ended").await;
    p.token = None;
    refused(
        &world,
        p.request("POST", "/p/v1/login", Some(&login(&patients[0], &initial))).await?,
        "patient.login",
        "invalid_credentials",
    )
    .await;

    // Lockout with backoff: five wrong (one already counted above), then
    // even the right password waits. A minute on first: the sign-in
    // throttle (ten a minute per ID, `patient_accounts.rs`) would answer
    // this patient's eleventh sign-in in a few seconds before the lockout.
    world.clock.advance_secs(60);
    for _ in 0..3 {
        refused(
            &world,
            p.request("POST", "/p/v1/login", Some(&login(&patients[0], "wrong-wrong-wrong"))).await?,
            "patient.login",
            "invalid_credentials",
        )
        .await;
    }
    refused(
        &world,
        p.request("POST", "/p/v1/login", Some(&login(&patients[0], "wrong-wrong-wrong"))).await?,
        "patient.login",
        "account_locked",
    )
    .await;
    refused(
        &world,
        p.request("POST", "/p/v1/login", Some(&login(&patients[0], chosen))).await?,
        "patient.login",
        "account_locked",
    )
    .await;
    world.clock.advance_secs(31);
    let s = ok(p.request("POST", "/p/v1/login", Some(&login(&patients[0], chosen))).await?);
    assert_eq!(s["must_change_password"], false);
    // Sessions idle out.
    p.token = s["session"].as_str().map(str::to_owned);
    world.clock.advance_secs(901);
    refused(&world, p.request("GET", "/p/v1/records", None).await?, "patient.records", "session_idle_timeout").await;
    assert!(world.chain_verifies().await);
    assert_eq!(world.outbox_once_cleaned().await?, []);
    Ok(())
}

/// DATA-1: `admin rotate-key` re-encrypts every sealed row under a fresh
/// key; the gateway reads them after reloading the key file; a tampered
/// ciphertext is refused, not shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_re_encrypts_everything_and_tampering_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let (nurse_image, _) = world.person_card(Profession::Nurse, "600001", CLINIC).await?;
    let pcscd = private_pcscd()?;
    let mut s0 = insert(&pcscd, 0, &nurse_image)?;
    let mut c = world.connect(&creds).await?;
    let n = session(&mut c, &mut s0.card).await?;
    let pid =
        ok(c.post("/v1/patients", &json!({"name": "Ito Mei", "birth_date": "2001-02-03"}), Some(&n)).await?)["id"]
            .as_str()
            .context("id")?
            .to_owned();
    let enc = ok(c.post("/v1/encounters", &json!({"patient": pid}), Some(&n)).await?);
    for i in 0..3 {
        ok(c.post("/v1/notes", &json!({"encounter": enc["id"], "content": {"text": format!("記録 {i}")}}), Some(&n))
            .await?);
    }
    let old_key = world.gw.keys().current().to_owned();
    let out = std::process::Command::new(testbed::bin_path("hpki-gateway")?)
        .arg("--config")
        .arg(world.config_path())
        .args(["admin", "rotate-key", "--settle-seconds", "1", "--operator", "it-staff"])
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains("re-encrypted 0 drafts, 3 records and 0 correction requests"), "{text}");
    world.gw.reload_keys()?;
    let new_key = world.gw.keys().current().to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(world.gw.store.key_usage().await?, vec![(new_key.clone(), 3)]);
    let read = ok(c.get(&format!("/v1/patients/{pid}/records"), Some(&n)).await?);
    assert_eq!(read["records"].as_array().map(Vec::len), Some(3));
    assert_eq!(world.last_audit("admin.key.rotate").await.event.actor, "admin:it-staff");

    // One flipped bit in a stored record: refused, never shown garbled.
    let pseudonym = world.gw.store.patient(&pid).await?.context("patient")?.pseudonym;
    let victim = world.gw.store.records_of(&pseudonym).await?.remove(0);
    let mut bad = victim.content.clone();
    bad[20] ^= 1;
    let row = hpki_gateway::store::SealedRow {
        id: victim.id.clone(),
        key_id: victim.key_id.clone(),
        content: victim.content.clone(),
    };
    assert!(world.gw.store.reseal(hpki_gateway::store::SealedTable::Records, &row, &victim.key_id, &bad).await?);
    refused(&world, c.get(&format!("/v1/patients/{pid}/records"), Some(&n)).await?, "records.read", "record_key_error")
        .await;
    Ok(())
}

/// Trust is scoped per CA (issue 16): the logged-in doctor's draft cannot be
/// confirmed with a signature certificate that copies the doctor's (hcRole,
/// signature policy, serialNumber, the same key) but is signed by a CA that
/// may not certify licensed professionals — each such confirm is refused
/// with `outside_trust_scope`, audited, and leaves the draft pending; the
/// real signature card then confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_under_a_forged_doctor_certificate_is_refused() -> Result<()> {
    use base64::Engine;
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let assistant_image = world.assistant_card(CLINIC, "A-016").await?;
    let assistant = format!("{CLINIC}/A-016");
    let (doctor_image, doctor) = world.person_card(Profession::Doctor, "160001", CLINIC).await?;
    world.link(&assistant, &doctor).await?;
    let pcscd = private_pcscd()?;
    let mut a_slot = insert(&pcscd, 0, &assistant_image)?;
    let mut slot = Some(insert(&pcscd, 1, &doctor_image)?);
    let mut client = world.connect(&creds).await?;
    let a = session(&mut client, &mut a_slot.card).await?;
    let d = session(&mut client, &mut slot.as_mut().context("slot")?.card).await?;
    let pid = ok(client
        .post("/v1/patients", &json!({"name": "Kato Ichiro", "birth_date": "1948-02-11"}), Some(&a))
        .await?)["id"]
        .as_str()
        .context("id")?
        .to_owned();
    let enc = ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?);
    let draft = ok(client
        .post("/v1/drafts", &json!({"encounter": enc["id"], "doctor": doctor, "content": {"text": "処方 X"}}), Some(&a))
        .await?);
    let did = draft["id"].as_str().context("id")?.to_owned();
    let confirm_path = format!("/v1/drafts/{did}/confirm");
    for signer in hpki_e2e::NON_HPKI_CAS {
        let forged = world.path(&format!("forged-{}.json", signer.name()));
        let intermediate = hpki_e2e::forge_card(&world.path("ca"), &doctor_image, signer, &forged)?;
        swap(&pcscd, &mut slot, &forged)?;
        let signing = signing_for(&mut client, &mut slot.as_mut().context("slot")?.card, &did, &d).await?;
        let mut body = signed_confirm(&mut slot.as_mut().context("slot")?.card, &signing)?;
        body["intermediates"] = json!([base64::engine::general_purpose::STANDARD.encode(&intermediate)]);
        refused(&world, client.post(&confirm_path, &body, Some(&d)).await?, "draft.confirm", "outside_trust_scope")
            .await;
        let row = world.gw.store.draft(&did).await?.context("draft row")?;
        assert!(!row.confirmed && row.record_id.is_none(), "a refused confirm changes nothing ({signer})");
    }
    swap(&pcscd, &mut slot, &doctor_image)?;
    let signing = signing_for(&mut client, &mut slot.as_mut().context("slot")?.card, &did, &d).await?;
    let body = signed_confirm(&mut slot.as_mut().context("slot")?.card, &signing)?;
    let record = ok(client.post(&confirm_path, &body, Some(&d)).await?);
    // The record keeps the CRLs that showed the chain unrevoked, with their scope.
    let evidence = record["revocation"].as_array().context("revocation evidence")?;
    assert_eq!(evidence.len(), 2, "{record}");
    assert!(evidence.iter().all(|e| e["scope"].as_str().is_some_and(|s| !s.is_empty())), "{record}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_confirm_passes_the_institution_and_encounter_checks_too() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let elsewhere = world.terminal(OTHER, "desk-9")?;
    let assistant_image = world.assistant_card(CLINIC, "A-017").await?;
    let assistant = format!("{CLINIC}/A-017");
    let (doctor_image, doctor) = world.person_card(Profession::Doctor, "170001", CLINIC).await?;
    world.link(&assistant, &doctor).await?;
    let pcscd = private_pcscd()?;
    let mut a_slot = insert(&pcscd, 0, &assistant_image)?;
    let mut d_slot = insert(&pcscd, 1, &doctor_image)?;
    let mut client = world.connect(&creds).await?;
    let a = session(&mut client, &mut a_slot.card).await?;
    let d = session(&mut client, &mut d_slot.card).await?;
    let pid = ok(client
        .post("/v1/patients", &json!({"name": "Kato Jiro", "birth_date": "1950-03-12"}), Some(&a))
        .await?)["id"]
        .as_str()
        .context("id")?
        .to_owned();
    let enc = ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?);
    let draft = ok(client
        .post("/v1/drafts", &json!({"encounter": enc["id"], "doctor": doctor, "content": {"text": "処方 Y"}}), Some(&a))
        .await?);
    let did = draft["id"].as_str().context("id")?.to_owned();
    let confirm_path = format!("/v1/drafts/{did}/confirm");
    let signing = signing_for(&mut client, &mut d_slot.card, &did, &d).await?;
    let body = signed_confirm(&mut d_slot.card, &signing)?;
    let record = ok(client.post(&confirm_path, &body, Some(&d)).await?);
    // A retry is answered with the record while the encounter is open here…
    assert_eq!(ok(client.post(&confirm_path, &body, Some(&d)).await?)["id"], record["id"]);
    // …but not from another institution's terminal…
    let mut there = world.connect(&elsewhere).await?;
    let d_there = session(&mut there, &mut d_slot.card).await?;
    refused(
        &world,
        there.post(&confirm_path, &body, Some(&d_there)).await?,
        "draft.confirm",
        "draft_other_institution",
    )
    .await;
    // …nor once the encounter is closed: the record is read within one.
    let enc_id = enc["id"].as_str().context("encounter id")?;
    ok(client.post(&format!("/v1/encounters/{enc_id}/close"), &json!({}), Some(&a)).await?);
    refused(&world, client.post(&confirm_path, &body, Some(&d)).await?, "draft.confirm", "no_open_encounter").await;
    Ok(())
}
