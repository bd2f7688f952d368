//! DATA-5 (and DATA-3): a document signed elsewhere — a referral letter
//! another hospital's doctor signed with an HPKI signature card, here
//! signed by OpenSSL's `cms -sign -cades` with such a card's key — received
//! within an encounter by `POST /v1/signed-documents`: validated along the
//! HPKI profile at once, its validation data collected while the signature
//! is valid, time-stamped and archive-time-stamped (B-LTA), kept as a record
//! naming where the original is. Every way it can be wrong is refused with
//! its own code, stores nothing, and is audited.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpki_e2e::clinic_story::ClinicStory;
use hpki_e2e::independent::{cades_check, openssl, pem_of};
use hpki_e2e::{TsaOptions, WorldOptions, card_request, gateway_cli};
use hpki_profile::Profession;
use serde_json::{Value, json};

const LETTER: &[u8] = b"%PDF-1.4\n% referral letter: Kato Ichiro, suspected angina; please see.\n%%EOF\n";
const OTHER_HOSPITAL: &str = "Sakura General Hospital";

async fn story() -> Result<ClinicStory> {
    ClinicStory::start(WorldOptions { tsa: Some(TsaOptions::default()), ..WorldOptions::default() }).await
}

/// A doctor of another hospital, not known to this gateway: the signature
/// key and certificate of an HPKI card from `ca`, as PEM files in `dir`
/// (`<name>.key`, `<name>.pem`); the certificate's serial (hex).
fn outside_doctor(ca: &mut hpki_ca::CaDir, dir: &Path, name: &str, license: &str) -> Result<String> {
    let image_path = dir.join(format!("{name}-card.json"));
    let issued = ca.issue_card(&card_request(Profession::Doctor, license, Some(OTHER_HOSPITAL)), &image_path)?;
    let image = virtual_card::CardImage::load(&image_path)?;
    std::fs::write(dir.join(format!("{name}.p8")), &image.signature.private_key)?;
    std::fs::write(dir.join(format!("{name}.der")), &image.signature.certificate)?;
    let p8 = format!("{name}.p8");
    let key = format!("{name}.key");
    let (good, text) = openssl(dir, &["pkey", "-inform", "DER", "-in", &p8, "-out", &key]);
    anyhow::ensure!(good, "{text}");
    pem_of(dir, &format!("{name}.der"), &format!("{name}.pem"));
    Ok(issued.signature_serial)
}

/// OpenSSL's CAdES signature (`cms -sign -cades`: detached, SHA-256, with
/// signing-certificate-v2, and smimeCapabilities besides) over `document`
/// by `signer`, with `chain` among its certificates.
fn openssl_sign(dir: &Path, document: &str, signer: &str, chain: &str) -> Result<Vec<u8>> {
    let (cert, key, out) = (format!("{signer}.pem"), format!("{signer}.key"), format!("{signer}.p7s"));
    let args = ["cms", "-sign", "-binary", "-cades", "-md", "sha256", "-in", document, "-signer", &cert];
    let rest = ["-inkey", &key, "-certfile", chain, "-outform", "DER", "-out", &out];
    let (good, text) = openssl(dir, &[&args[..], &rest[..]].concat());
    anyhow::ensure!(good, "openssl cms -sign: {text}");
    Ok(std::fs::read(dir.join(out))?)
}

fn receive_body(story: &ClinicStory, document: &[u8], p7s: &[u8]) -> Value {
    json!({
        "encounter": story.encounter_id(),
        "document": B64.encode(document),
        "signature": B64.encode(p7s),
        "origin_institution": OTHER_HOSPITAL,
        "origin_reference": "referral-2026-0042",
    })
}

/// `POST /v1/signed-documents` of `document` under `p7s`, as answered.
async fn send(story: &mut ClinicStory, document: &[u8], p7s: &[u8], session: &str) -> Result<(u16, Value)> {
    let body = receive_body(story, document, p7s);
    story.client.post("/v1/signed-documents", &body, Some(session)).await
}

/// The directory for OpenSSL's files, with the hierarchy's root and the
/// HPKI signature CA as PEM.
fn workdir(story: &ClinicStory) -> Result<PathBuf> {
    let dir = story.world.path("outside");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(story.world.path("root.der"), dir.join("root.der"))?;
    pem_of(&dir, "root.der", "root.pem");
    std::fs::copy(story.world.path("hpki-sign.der"), dir.join("hpki-sign.der"))?;
    pem_of(&dir, "hpki-sign.der", "chain.pem");
    std::fs::write(dir.join("letter.pdf"), LETTER)?;
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_letter_from_another_hospital_becomes_a_long_term_signed_record() -> Result<()> {
    let mut story = story().await?;
    let dir = workdir(&story)?;
    outside_doctor(&mut story.world.ca, &dir, "yamada", "400001")?;
    let p7s = openssl_sign(&dir, "letter.pdf", "yamada", "chain.pem")?;
    let session = story.doctor_session().to_owned();
    let (status, record) = send(&mut story, LETTER, &p7s, &session).await?;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["kind"], "received", "{record}");
    assert_eq!(record["institution"], hpki_e2e::clinic_story::CLINIC, "the copy is the receiving clinic's: {record}");
    let origin = format!("received:{OTHER_HOSPITAL}:referral-2026-0042");
    assert_eq!(record["origin_reference"], origin.as_str(), "DATA-3: {record}");
    assert_eq!(record["signature_format"], "CAdES B-LTA", "{record}");
    assert_eq!(record["content"]["document"], B64.encode(LETTER), "{record}");
    assert_eq!(record["signer"], "MD-400001", "the HPKI certificate's serialNumber: {record}");
    let id = record["id"].as_str().context("record id")?.to_owned();
    let audited = story.world.last_audit("signed_document.receive").await;
    assert_eq!(audited.event.outcome, "ok");
    assert!(audited.event.object.ends_with(&format!("record:{id}")), "{}", audited.event.object);

    // The container: the signer's signature untouched (OpenSSL's own
    // signed attributes, smimeCapabilities included), grown by the
    // validation data and both time-stamps.
    let kept = story.world.gw.store.record_signatures(&id).await?;
    assert_eq!(kept.len(), 1);
    let opened = hpki_cades::open(&kept[0].container, LETTER)?;
    let theirs = hpki_cades::open(&p7s, LETTER)?;
    assert_eq!(opened.signature, theirs.signature);
    assert_eq!(opened.attributes, theirs.attributes);
    assert_eq!(opened.level(), "B-LTA");
    assert!(theirs.crls.is_empty() && !opened.crls.is_empty(), "the CRLs were collected at receipt");

    // Outside the product: OpenSSL with only the embedded CRLs, pyHanko.
    std::fs::write(dir.join("kept.p7s"), &kept[0].container)?;
    let verify = ["cms", "-verify", "-binary", "-inform", "DER", "-in", "kept.p7s", "-content", "letter.pdf"];
    let trust = ["-CAfile", "root.pem", "-purpose", "any", "-crl_check_all", "-out", "/dev/null"];
    let (good, text) = openssl(&dir, &[&verify[..], &trust[..]].concat());
    assert!(good && text.contains("Verification successful"), "{text}");
    let report = cades_check(&dir, "letter.pdf", "kept.p7s")?;
    for flag in ["intact", "valid", "trusted"] {
        assert_eq!(report["signature"][flag], true, "{flag}: {report}");
        assert_eq!(report["signature_timestamp"][flag], true, "{flag}: {report}");
        assert_eq!(report["archive_timestamps"][0][flag], true, "{flag}: {report}");
    }
    // And the gateway's own check, from the store.
    let config = story.world.config_path();
    let verdict: Value = serde_json::from_str(&gateway_cli(&config, &["records", "verify", "--record", &id])?)?;
    assert_eq!(verdict["level"], "B-LTA", "{verdict}");

    // The patient's records list it with the rest.
    let patient = story.patient.clone();
    let (status, records) = story.client.get(&format!("/v1/patients/{patient}/records"), Some(&session)).await?;
    assert_eq!(status, 200, "{records}");
    let kinds: Vec<&str> =
        records["records"].as_array().into_iter().flatten().filter_map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, ["received"], "{records}");
    Ok(())
}

/// `answer` is the refusal `code`, audited so, and no record was stored.
async fn refused(story: &mut ClinicStory, answer: (u16, Value), code: &str) -> Result<()> {
    let (status, body) = answer;
    assert!(status >= 400, "{code}: {status} {body}");
    assert_eq!(body["error"], code, "{body}");
    let audited = story.world.last_audit("signed_document.receive").await;
    assert_eq!((audited.event.outcome.as_str(), audited.event.reason.as_str()), ("refused", code));
    let patient = story.world.gw.store.patient(&story.patient).await?.context("patient")?;
    let records = story.world.gw.store.records_of(&patient.pseudonym).await?;
    assert!(records.is_empty(), "{code}: nothing stored, found {}", records.len());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_signed_document_is_refused_with_its_code_and_nothing_is_stored() -> Result<()> {
    let mut story = story().await?;
    let dir = workdir(&story)?;
    let serial = outside_doctor(&mut story.world.ca, &dir, "yamada", "400001")?;
    let p7s = openssl_sign(&dir, "letter.pdf", "yamada", "chain.pem")?;
    let session = story.doctor_session().to_owned();

    // Another document under the signature, and no signature at all.
    let mut changed = LETTER.to_vec();
    changed[20] ^= 0x01;
    let answer = send(&mut story, &changed, &p7s, &session).await?;
    refused(&mut story, answer, "bad_signed_document").await?;
    let answer = send(&mut story, LETTER, b"not a CMS", &session).await?;
    refused(&mut story, answer, "bad_signed_document").await?;

    // A signer no anchor the gateway trusts issued: a certificate of its
    // own making, and one from an impostor hierarchy with the same names
    // (the real CA's key does not verify it).
    let self_made =
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "selfmade.key", "-out", "selfmade.pem"];
    let subject = ["-subj", "/C=JP/O=Nowhere Clinic/CN=Dr Nobody", "-days", "30"];
    let usage = ["-addext", "keyUsage=critical,nonRepudiation"];
    let (good, text) = openssl(&dir, &[&self_made[..], &subject[..], &usage[..]].concat());
    anyhow::ensure!(good, "{text}");
    let unknown = openssl_sign(&dir, "letter.pdf", "selfmade", "chain.pem")?;
    let answer = send(&mut story, LETTER, &unknown, &session).await?;
    refused(&mut story, answer, "unknown_issuer").await?;
    let mut impostor = hpki_ca::CaDir::init(&story.world.path("impostor-ca"), hpki_ca::DEFAULT_CRL_BASE_URL)?;
    outside_doctor(&mut impostor, &dir, "impostor", "400002")?;
    let forged = openssl_sign(&dir, "letter.pdf", "impostor", "chain.pem")?;
    let answer = send(&mut story, LETTER, &forged, &session).await?;
    refused(&mut story, answer, "bad_signature").await?;

    // Not an HPKI signature certificate: a terminal's TLS certificate of
    // the same hierarchy signing the letter.
    let terminal = story.world.terminal("Other Clinic", "desk-9")?;
    std::fs::copy(&terminal.cert, dir.join("desk9.pem"))?;
    std::fs::copy(&terminal.key, dir.join("desk9.key"))?;
    std::fs::copy(&terminal.chain, dir.join("desk9-chain.pem"))?;
    let by_terminal = openssl_sign(&dir, "letter.pdf", "desk9", "desk9-chain.pem")?;
    let answer = send(&mut story, LETTER, &by_terminal, &session).await?;
    refused(&mut story, answer, "outside_trust_scope").await?;

    // The gateway's CRLs gone stale: published good for two seconds.
    story.world.ca.publish_crls(&story.world.path("crl"), time::Duration::seconds(2))?;
    hpki_gateway::http::reload::reload(&story.world.gw).map_err(anyhow::Error::msg)?;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let answer = send(&mut story, LETTER, &p7s, &session).await?;
    refused(&mut story, answer, "stale_crl").await?;

    // The signer's certificate revoked, the CRLs published.
    story.world.ca.revoke(&serial, hpki_ca::Reason::KeyCompromise)?;
    story.world.publish_crls()?;
    let answer = send(&mut story, LETTER, &p7s, &session).await?;
    refused(&mut story, answer, "revoked").await?;

    // An assistant may not receive signed documents (the role table).
    let assistant = story.assistant_session().to_owned();
    let fresh = openssl_sign(&dir, "letter.pdf", "yamada", "chain.pem")?;
    let answer = send(&mut story, LETTER, &fresh, &assistant).await?;
    refused(&mut story, answer, "not_permitted").await?;
    Ok(())
}
