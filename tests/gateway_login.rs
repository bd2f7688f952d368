//! Card login at the gateway through everything real: the virtual card in a
//! private pcscd, the card layer, mutual TLS 1.3 with a terminal
//! certificate, HPKI validation with CRLs, the store and the audit log. The
//! gateway runs in-process so its clock can be moved instead of sleeping.

use std::time::Duration;

use anyhow::{Context, Result};
use hpki_card::{HpkiCard, PcscContext};
use hpki_e2e::{World, WorldOptions, login, private_pcscd, session, signed_login};
use hpki_profile::Profession;
use serde_json::{Value, json};
use testbed::{CardProcess, PrivatePcscd};

const CLINIC: &str = "Kanazawa Clinic";

/// A world, a private pcscd, and a card in slot 0.
struct Desk {
    card: HpkiCard,
    _process: CardProcess,
    _pcscd: PrivatePcscd,
}

fn insert(pcscd: &PrivatePcscd, slot: u8, image: &std::path::Path) -> Result<(CardProcess, HpkiCard)> {
    let process = CardProcess::start(pcscd, slot, image)?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(process.reader(), Duration::from_secs(5))?;
    let card = ctx.connect(process.reader())?;
    Ok((process, card))
}

async fn desk(world: &mut World, profession: Profession) -> Result<Desk> {
    let image = world.card(profession, "100001", CLINIC).await?;
    let pcscd = private_pcscd()?;
    let (process, card) = insert(&pcscd, 0, &image)?;
    Ok(Desk { card, _process: process, _pcscd: pcscd })
}

/// A doctor logged in at desk-1: the card, the connection and the session.
async fn doctor_at_desk_1(world: &mut World) -> Result<(Desk, hpki_e2e::TerminalClient, String)> {
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(world, Profession::Doctor).await?;
    let mut client = world.connect(&creds).await?;
    let (_, body) = login(&mut client, &mut desk.card).await?;
    let token = body["session"].as_str().context("session")?.to_owned();
    Ok((desk, client, token))
}

/// Login refused with `code`, and the refusal audited with it.
async fn assert_refused(world: &World, status_body: (u16, Value), code: &str) {
    let (status, body) = status_body;
    assert!(status >= 400, "expected a refusal, got {status}: {body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let audited = world.last_audit("auth.login").await;
    assert_eq!((audited.event.outcome.as_str(), audited.event.reason.as_str()), ("refused", code));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_profession_and_an_assistant_log_in_and_whoami_says_who() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let pcscd = private_pcscd()?;
    let cases = [
        (Profession::Doctor, "doctor"),
        (Profession::Dentist, "dentist"),
        (Profession::Pharmacist, "pharmacist"),
        (Profession::Nurse, "nurse"),
        (Profession::RegisteredDietitian, "dietitian"),
    ];
    for (i, (profession, role)) in cases.into_iter().enumerate() {
        let image = world.card(profession, &format!("2000{i}"), CLINIC).await?;
        let (process, mut card) = insert(&pcscd, (i % 2) as u8, &image)?;
        let mut client = world.connect(&creds).await?;
        let (status, body) = login(&mut client, &mut card).await?;
        assert_eq!(status, 200, "{role}: {body}");
        assert_eq!(body["person"]["role"], role);
        assert_eq!(body["idle_timeout_seconds"], 300);
        let token = body["session"].as_str().unwrap_or_default().to_owned();
        let (status, me) = client.get("/v1/auth/whoami", Some(&token)).await?;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["person"]["role"], role);
        assert_eq!(me["person"]["profession"], role);
        assert_eq!(me["terminal"], format!("{CLINIC}/desk-1"));
        let audited = world.last_audit("auth.login").await;
        assert_eq!(
            (audited.event.outcome.as_str(), audited.event.actor.as_str()),
            ("ok", body["person"]["id"].as_str().unwrap_or(""))
        );
        drop(card);
        drop(process);
    }
    let image = world.assistant_card(CLINIC, "S-0042").await?;
    let (_process, mut card) = insert(&pcscd, 1, &image)?;
    std::thread::sleep(Duration::from_millis(100));
    let mut client = world.connect(&creds).await?;
    let (status, body) = login(&mut client, &mut card).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["person"]["role"], "assistant");
    assert_eq!(body["person"]["id"], format!("{CLINIC}/S-0042"));
    assert!(body["person"].get("profession").is_none());
    assert!(world.chain_verifies().await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_challenge_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let mut client = world.connect(&creds).await?;
    let c = client.challenge().await?;
    let body = signed_login(&mut desk.card, &c, &client.channel_binding)?;
    assert_eq!(client.post("/v1/auth/login", &body, None).await?.0, 200);
    let again = client.post("/v1/auth/login", &body, None).await?;
    assert_refused(&world, again, "challenge_replayed").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_challenge_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let mut client = world.connect(&creds).await?;
    let c = client.challenge().await?;
    let body = signed_login(&mut desk.card, &c, &client.channel_binding)?;
    world.clock.advance_secs(121);
    let r = client.post("/v1/auth/login", &body, None).await?;
    assert_refused(&world, r, "challenge_expired").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_of_another_terminal_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let a = world.terminal(CLINIC, "desk-1")?;
    let b = world.terminal(CLINIC, "desk-2")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let mut client_a = world.connect(&a).await?;
    let mut client_b = world.connect(&b).await?;
    let c = client_a.challenge().await?;
    let body = signed_login(&mut desk.card, &c, &client_b.channel_binding)?;
    let r = client_b.post("/v1/auth/login", &body, None).await?;
    assert_refused(&world, r, "challenge_other_terminal").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_made_for_another_tls_connection_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let mut honest = world.connect(&creds).await?;
    let mut relay = world.connect(&creds).await?;
    assert_ne!(honest.channel_binding, relay.channel_binding);
    // The challenge is taken on the relay's connection, but the card signs
    // for the honest connection it thinks it is on.
    let c = relay.challenge().await?;
    let body = signed_login(&mut desk.card, &c, &honest.channel_binding)?;
    let r = relay.post("/v1/auth/login", &body, None).await?;
    assert_refused(&world, r, "signature_invalid").await;
    let _ = honest.get("/v1/auth/whoami", None).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_card_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let cert = desk.card.read_certificate(hpki_card::Application::Authentication)?;
    let serial = hpki_profile::read_holder(&cert)?.certificate_serial;
    world.ca.revoke(&serial, hpki_ca::Reason::KeyCompromise)?;
    world.publish_crls()?;
    let mut client = world.connect(&creds).await?;
    let r = login(&mut client, &mut desk.card).await?;
    assert_refused(&world, r, "revoked").await;
    Ok(())
}

/// A session outlived its card's revocation by up to 12 h (issue 18,
/// finding 8): revocation was checked only at login. Now the CRL that
/// revokes the card ends its open session when the gateway picks it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_when_a_new_crl_revokes_its_card() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let mut client = world.connect(&creds).await?;
    let token = session(&mut client, &mut desk.card).await?;
    assert_eq!(client.get("/v1/auth/whoami", Some(&token)).await?.0, 200);
    let cert = desk.card.read_certificate(hpki_card::Application::Authentication)?;
    let serial = hpki_profile::read_holder(&cert)?.certificate_serial;
    world.ca.revoke(&serial, hpki_ca::Reason::KeyCompromise)?;
    world.publish_crls()?;
    // The reload watcher looks at the CRL files every 2 s.
    let mut answer = (0, serde_json::Value::Null);
    for _ in 0..50 {
        answer = client.get("/v1/auth/whoami", Some(&token)).await?;
        if answer.0 != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!((answer.0, answer.1["error"].as_str()), (401, Some("session_ended")), "{}", answer.1);
    let ended = world.last_audit("auth.session.revoked").await;
    assert_eq!((ended.event.outcome.as_str(), ended.event.reason.as_str()), ("ok", "revoked"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_past_its_next_update_fails_closed() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let mut client = world.connect(&creds).await?;
    // Four days and a bit later for the gateway's HPKI checks.
    world.clock.advance_secs(4 * 86_400 + 60);
    let r = login(&mut client, &mut desk.card).await?;
    assert_refused(&world, r, "stale_crl").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_of_an_unknown_ca_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let other_dir = world.path("other-ca");
    let mut other = hpki_ca::CaDir::init(&other_dir, hpki_ca::DEFAULT_CRL_BASE_URL)?;
    let image = world.path("foreign.json");
    let issued = other.issue_card(&hpki_e2e::card_request(Profession::Doctor, "999999", Some(CLINIC)), &image)?;
    world.ensure_institution(CLINIC).await?;
    world.register(&issued.person_id, "doctor", CLINIC).await?;
    let pcscd = private_pcscd()?;
    let (_p, mut card) = insert(&pcscd, 0, &image)?;
    let mut client = world.connect(&creds).await?;
    let r = login(&mut client, &mut card).await?;
    // Test CAs share their names, so the chain is found by name and our
    // CA's key refuses the foreign certificate's signature.
    assert_refused(&world, r, "bad_signature").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assistant_card_of_another_institution_is_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let image = world.assistant_card("Noto Hospital", "S-7").await?;
    let pcscd = private_pcscd()?;
    let (_p, mut card) = insert(&pcscd, 0, &image)?;
    let mut client = world.connect(&creds).await?;
    let r = login(&mut client, &mut card).await?;
    assert_refused(&world, r, "assistant_wrong_institution").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_and_deactivated_people_are_refused() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    // Issued by IT but never registered at the gateway.
    let image = world.path("unregistered.json");
    world.ca.issue_card(&hpki_e2e::card_request(Profession::Nurse, "555", None), &image)?;
    let pcscd = private_pcscd()?;
    let (_p, mut card) = insert(&pcscd, 0, &image)?;
    let mut client = world.connect(&creds).await?;
    let r = login(&mut client, &mut card).await?;
    assert_refused(&world, r, "person_not_registered").await;

    world.ensure_institution(CLINIC).await?;
    world.register("RN-555", "nurse", CLINIC).await?;
    let (status, body) = login(&mut client, &mut card).await?;
    assert_eq!(status, 200, "{body}");
    let token = body["session"].as_str().unwrap_or_default().to_owned();
    world.gw.store.set_person_active("RN-555", false, 0).await?;
    let (status, body) = client.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("person_deactivated")), "the session ends at once");
    let r = login(&mut client, &mut card).await?;
    assert_refused(&world, r, "person_deactivated").await;
    Ok(())
}

async fn handshake_refused(world: &World, creds: &hpki_e2e::TerminalCreds) -> bool {
    // TLS 1.3: connect() returns before the server has judged the client
    // certificate; the refusal shows on the first read.
    match world.connect(creds).await {
        Err(_) => true,
        Ok(mut c) => c.get("/v1/auth/whoami", None).await.is_err(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_terminal_gets_no_response() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "lost-laptop")?;
    let mut before = world.connect(&creds).await?;
    assert_eq!(before.get("/v1/auth/whoami", None).await?.0, 401, "works before revocation");
    let pem = std::fs::read(&creds.cert)?;
    let der = hpki_ca::certificate_from_bytes(&pem).map_err(anyhow::Error::msg)?;
    let serial = hpki_profile::read_holder(&der)?.certificate_serial;
    world.ca.revoke(&serial, hpki_ca::Reason::KeyCompromise)?;
    world.publish_crls()?;
    assert!(handshake_refused(&world, &creds).await, "a revoked terminal must not get a response");
    let audited = world.last_audit("tls.handshake").await;
    assert_eq!(audited.event.outcome, "refused");
    assert_eq!(audited.event.reason, "terminal_certificate_revoked");
    // The connection made before the reload stays up (reload drops nothing).
    assert_eq!(before.get("/v1/auth/whoami", None).await?.0, 401);
    Ok(())
}

/// Issue 18, 8: a terminal is named `institution/name`; with a '/' in its
/// O or CN two terminals could share that name, so such a certificate
/// identifies nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_whose_o_or_cn_holds_a_slash_identifies_nobody() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let base = world.terminal(CLINIC, "desk-1")?;
    let ca = world.path("ca");
    // The same re-signing with plain names works: what follows is the '/'.
    let plain = hpki_e2e::terminal_with_subject(&ca, &base, CLINIC, "desk-2", &world.path("plain"))?;
    assert_eq!(world.connect(&plain).await?.get("/v1/auth/whoami", None).await?.0, 401);
    for (institution, name) in [(format!("{CLINIC}/desk-1"), "x".to_owned()), (CLINIC.to_owned(), "a/b".to_owned())] {
        let odd = hpki_e2e::terminal_with_subject(&ca, &base, &institution, &name, &world.path("odd"))?;
        assert!(handshake_refused(&world, &odd).await, "O={institution:?} CN={name:?} was served");
        let audited = world.last_audit("tls.handshake").await;
        assert_eq!(audited.event.reason, "terminal_certificate_unreadable");
    }
    // And hpki-certs will not issue one.
    let refused = world.ca.issue_terminal(
        &hpki_ca::TerminalRequest { institution: CLINIC.into(), name: "a/b".into(), valid_days: 30 },
        &world.path("never"),
    );
    assert!(refused.is_err_and(|e| e.to_string().contains("'/'")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_terminal_certificate_gets_no_response() -> Result<()> {
    let world = World::start(WorldOptions::default()).await?;
    // Signed by the real terminal CA, but expired yesterday.
    let key = hpki_ca::keys::load(&world.path("ca/terminal/key.pem"), hpki_ca::CaRole::Terminal.key_kind())?;
    let issuer = rcgen::Issuer::new(hpki_ca::CaRole::Terminal.params(), key);
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name.push(rcgen::DnType::OrganizationName, CLINIC);
    p.distinguished_name.push(rcgen::DnType::CommonName, "old-desk");
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    p.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&leaf_key, &issuer)?;
    let dir = world.path("expired-terminal");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("terminal.pem"), cert.pem())?;
    std::fs::write(dir.join("terminal.key"), leaf_key.serialize_pem())?;
    std::fs::copy(world.path("ca/terminal/cert.pem"), dir.join("ca-chain.pem"))?;
    let creds = hpki_e2e::TerminalCreds {
        cert: dir.join("terminal.pem"),
        key: dir.join("terminal.key"),
        chain: dir.join("ca-chain.pem"),
    };
    assert!(handshake_refused(&world, &creds).await);
    assert_eq!(world.last_audit("tls.handshake").await.event.reason, "terminal_certificate_expired");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outside_the_allowlist_is_refused_before_tls_and_audited() -> Result<()> {
    let mut world = World::start(WorldOptions { allow: vec!["10.255.255.0/24"], ..WorldOptions::default() }).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    assert!(handshake_refused(&world, &creds).await);
    let audited = world.last_audit("net.connect").await;
    assert_eq!((audited.event.outcome.as_str(), audited.event.reason.as_str()), ("refused", "source_not_allowed"));
    assert!(audited.event.object.starts_with("peer:127.0.0.1:"));
    // Refused before TLS: no handshake was even attempted.
    assert!(world.audit().await.iter().all(|r| r.event.action != "tls.handshake"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_oversized_bodies_are_refused() -> Result<()> {
    let mut world = World::start(WorldOptions { max_body_bytes: 1024, ..WorldOptions::default() }).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut client = world.connect(&creds).await?;
    let (status, body) = client.request("POST", "/v1/auth/login", b"{not json".to_vec(), None).await?;
    assert_eq!((status, body["error"].as_str()), (400, Some("malformed_json")));
    assert_eq!(world.last_audit("auth.login").await.event.reason, "malformed_json");
    let big = json!({ "challenge_id": "x", "certificate": "A".repeat(4096), "signature": "" });
    let (status, body) = client.post("/v1/auth/login", &big, None).await?;
    assert_eq!((status, body["error"].as_str()), (413, Some("body_too_large")));
    // The unread rest of an oversized body makes the connection unusable.
    let mut client = world.connect(&creds).await?;
    let (status, body) = client.get("/v1/nothing", None).await?;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_lock_after_five_idle_minutes_and_end_at_logout_auth_8() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let other = world.terminal(CLINIC, "desk-2")?;
    let mut desk = desk(&mut world, Profession::Doctor).await?;
    let mut client = world.connect(&creds).await?;
    let (_, body) = login(&mut client, &mut desk.card).await?;
    let token = body["session"].as_str().unwrap_or_default().to_owned();
    // Activity every 4 minutes keeps it open.
    for _ in 0..3 {
        world.clock.advance_secs(240);
        assert_eq!(client.get("/v1/auth/whoami", Some(&token)).await?.0, 200);
    }
    // The session is bound to its terminal.
    let mut elsewhere = world.connect(&other).await?;
    let (status, b) = elsewhere.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!((status, b["error"].as_str()), (401, Some("session_other_terminal")));
    // Five minutes without activity: over.
    world.clock.advance_secs(300);
    let (status, b) = client.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!((status, b["error"].as_str()), (401, Some("session_idle_timeout")));

    let (_, body) = login(&mut client, &mut desk.card).await?;
    let token = body["session"].as_str().unwrap_or_default().to_owned();
    assert_eq!(client.post("/v1/auth/logout", &json!({}), Some(&token)).await?.0, 204);
    let (status, b) = client.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!((status, b["error"].as_str()), (401, Some("session_ended")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_terminal_is_refused_at_once() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    let (_desk, mut client, token) = doctor_at_desk_1(&mut world).await?;
    world.gw.store.set_terminal_suspended(CLINIC, "desk-1", true, "stolen", 0).await?;
    // With or without a session, on every kind of endpoint, the terminal
    // hears that it is suspended before anything else.
    let before = world.audit().await.len();
    for (method, path, bearer) in [
        ("POST", "/v1/auth/challenge", None),
        ("GET", "/v1/auth/whoami", Some(token.as_str())),
        ("GET", "/v1/drafts", Some(token.as_str())),
        ("GET", "/v1/drafts", None),
        ("GET", "/v1/auth/whoami", Some("not-a-session")),
        ("GET", "/v1/no-such-thing", None),
    ] {
        let (status, body) = client.request(method, path, b"{}".to_vec(), bearer).await?;
        assert_eq!((status, body["error"].as_str()), (403, Some("terminal_suspended")), "{method} {path}: {body}");
    }
    let audit = world.audit().await;
    assert_eq!(audit.len(), before + 6);
    assert!(audit[before..].iter().all(|e| e.event.outcome == "refused" && e.event.reason == "terminal_suspended"));
    // Lifted, the session is still there: suspension neither used nor ended it.
    world.gw.store.set_terminal_suspended(CLINIC, "desk-1", false, "found", 0).await?;
    let (status, body) = client.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

/// LOG-1 fails closed: when the audit entry of a request cannot be written,
/// the request gets no answer but `audit_unavailable`, and nothing of what
/// it would have shown. The failure is a real SQLite error raised inside
/// the gateway's INSERT (a trigger stands in for a full disk).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_audit_entry_cannot_be_written_gets_no_answer_log_1() -> Result<()> {
    use sqlx::{Connection, Executor};
    let mut world = World::start(WorldOptions::default()).await?;
    let (_desk, mut client, token) = doctor_at_desk_1(&mut world).await?;
    let db = world.dir.path().join("data/identity.db");
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    raw.execute("CREATE TRIGGER test_disk_full BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .await?;
    let before = world.gw.metrics.audit_failures.get();
    let (status, body) = client.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!((status, body["error"].as_str()), (503, Some("audit_unavailable")), "{body}");
    assert!(body.get("person").is_none(), "{body}");
    let (status, body) = client.request("POST", "/v1/auth/challenge", b"{}".to_vec(), None).await?;
    assert_eq!((status, body["error"].as_str()), (503, Some("audit_unavailable")), "{body}");
    assert!(body.get("nonce").is_none(), "{body}");
    // A change whose entry cannot be written: kept, its answer withheld,
    // its entry staged with it (the audit outbox).
    let (status, body) = client
        .post("/v1/patients", &serde_json::json!({"name": "Abe Jun", "birth_date": "1990-09-09"}), Some(&token))
        .await?;
    assert_eq!((status, body["error"].as_str()), (503, Some("audit_unavailable")), "{body}");
    let after = world.gw.metrics.audit_failures.get();
    assert_eq!(after - before, 3);
    let staged = world.gw.store.outbox_rows().await?;
    assert_eq!(staged.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["patient.register"], "{staged:?}");
    // A minute on, the operator is told.
    world.clock.advance_secs(61);
    hpki_gateway::http::reload::watch_outbox(&world.gw).await;
    assert_eq!(world.gw.metrics.audit_outbox_stale.get(), 1);
    // The disk has room again: answers come back and the chain has no gap.
    raw.execute("DROP TRIGGER test_disk_full").await?;
    let (status, body) = client.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.last_audit("auth.whoami").await.event.outcome, "ok");
    // What the next start does: the registration gets its entry.
    let recovered = hpki_gateway::audit::outbox::drain(&world.gw.store, world.gw.clock.now_ms()).await?;
    assert_eq!(recovered.len(), 1);
    let entry = world.last_audit("patient.register").await;
    assert_eq!((entry.event.outcome.as_str(), entry.event.reason.as_str()), ("ok", "committed_unanswered"));
    assert!(entry.event.object.starts_with("patient:P"), "{:?}", entry.event);
    hpki_gateway::http::reload::watch_outbox(&world.gw).await;
    assert_eq!(world.gw.metrics.audit_outbox_stale.get(), 0);
    assert!(world.chain_verifies().await);
    Ok(())
}

/// The same login and replay refusal with the store on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_replay_refusal_on_postgresql() -> Result<()> {
    let db = hpki_e2e::PgDatabase::create().await?;
    let mut world = World::start(WorldOptions { postgres: Some(db.url.clone()), ..WorldOptions::default() }).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let mut desk = desk(&mut world, Profession::Dentist).await?;
    let mut client = world.connect(&creds).await?;
    let c = client.challenge().await?;
    let body = signed_login(&mut desk.card, &c, &client.channel_binding)?;
    let (status, ok) = client.post("/v1/auth/login", &body, None).await?;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["person"]["role"], "dentist");
    let again = client.post("/v1/auth/login", &body, None).await?;
    assert_refused(&world, again, "challenge_replayed").await;
    assert!(world.chain_verifies().await);
    drop(world);
    db.drop_db().await;
    Ok(())
}

/// Trust is scoped per CA (issue 16): a card whose certificates claim
/// exactly what a registered doctor's card claims — hcRole, policies,
/// subject and serialNumber copied, the same keys — but signed by a CA that
/// may not certify licensed professionals (the root itself, the
/// institution, terminal, service or VPN CA), presented with that CA's
/// certificate as the intermediate, does not log in. The real card does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_forged_by_a_ca_outside_the_hpki_scope_cannot_log_in() -> Result<()> {
    use base64::Engine;
    let mut world = World::start(WorldOptions::default()).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let real = world.card(Profession::Doctor, "100001", CLINIC).await?;
    let pcscd = private_pcscd()?;
    for signer in hpki_e2e::NON_HPKI_CAS {
        let forged = world.path(&format!("forged-{}.json", signer.name()));
        let intermediate = hpki_e2e::forge_card(&world.path("ca"), &real, signer, &forged)?;
        let (process, mut card) = insert(&pcscd, 0, &forged)?;
        let mut client = world.connect(&creds).await?;
        let c = client.challenge().await?;
        let mut body = signed_login(&mut card, &c, &client.channel_binding)?;
        body["intermediates"] = json!([base64::engine::general_purpose::STANDARD.encode(&intermediate)]);
        let r = client.post("/v1/auth/login", &body, None).await?;
        assert_refused(&world, r, "outside_trust_scope").await;
        drop(card);
        drop(process);
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_p, mut card) = insert(&pcscd, 0, &real)?;
    let mut client = world.connect(&creds).await?;
    let (status, body) = login(&mut client, &mut card).await?;
    assert_eq!(status, 200, "the real card logs in: {body}");
    // Its session keeps the CRLs that showed the chain unrevoked: the
    // authentication CA's and the root's, each with number and scope.
    let db = world.path("data/identity.db");
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", db.display())).await?;
    let (kept,): (String,) = sqlx::query_as("SELECT revocation FROM sessions").fetch_one(&mut c).await?;
    let kept: Vec<Value> = serde_json::from_str(&kept)?;
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept[0]["issuer"].as_str().is_some_and(|i| i.contains("AuthCA")), "{kept:?}");
    assert!(kept.iter().all(|e| e["crl_number"].is_string() && e["scope"].is_string()), "{kept:?}");
    Ok(())
}
