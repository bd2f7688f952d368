//! The card agent end to end: a real `card-agent` process, a private pcscd
//! with virtual cards, and a gateway on SQLite speaking mTLS.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hpki_card::Application;
use hpki_e2e::{AgentOptions, AgentProcess, PIN, TerminalCreds, World, WorldOptions, reader_view};
use hpki_profile::Profession;
use serde_json::{Value, json};
use testbed::{CardProcess, PrivatePcscd};

const CLINIC: &str = "Kanazawa Clinic";

struct Desk {
    world: World,
    pcscd: PrivatePcscd,
    terminal: TerminalCreds,
}

async fn desk() -> Result<Desk> {
    let mut world = World::start(WorldOptions::default()).await?;
    let terminal = world.terminal(CLINIC, "desk-1")?;
    world.ensure_institution(CLINIC).await?;
    let pcscd = PrivatePcscd::start()?;
    Ok(Desk { world, pcscd, terminal })
}

impl Desk {
    async fn agent(&self, terminal: &TerminalCreds, idle_lock_seconds: u64) -> Result<AgentProcess> {
        let ca = self.world.path("server/ca-chain.pem");
        AgentProcess::start(
            &self.pcscd,
            AgentOptions { gateway: self.world.addr, gateway_ca: &ca, terminal, idle_lock_seconds, language: "ja" },
        )
        .await
    }
}

fn wrong_pin() -> &'static str {
    "0000"
}

async fn login(agent: &AgentProcess, reader: &str, pin: &str) -> Result<(u16, Value)> {
    agent.api("POST", "/api/v1/login", Some(json!({ "reader": reader, "pin": pin }))).await
}

async fn whoami(agent: &AgentProcess) -> Result<(u16, Value)> {
    agent.api("GET", "/api/v1/gateway/v1/auth/whoami", None).await
}

/// Whether a VERIFY carrying a PIN (not the empty one that only asks for
/// the tries left) reached the card since its APDU log was cleared.
fn pin_was_sent(card: &CardProcess) -> bool {
    card.apdu_log().iter().any(|l| l.split_whitespace().nth(1) == Some("20") && !l.contains(" lc=0 "))
}

fn start_card(pcscd: &PrivatePcscd, slot: u8, image: &Path) -> Result<CardProcess> {
    CardProcess::start(pcscd, slot, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_inserts_the_card_types_the_pin_and_the_gateway_says_doctor() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.card(Profession::Doctor, "D-1001", CLINIC).await?;
    let _card = start_card(&d.pcscd, 0, &image)?;
    let reader = d.pcscd.reader(0);
    let agent = d.agent(&d.terminal, 300).await?;

    // On insert the agent shows who the card belongs to and the tries left,
    // before any PIN is typed.
    let s = agent.wait_card_read(&reader).await?;
    let card = &reader_view(&s, &reader).context("reader shown")?["card"];
    assert_eq!(card["holder"]["profession"], "doctor");
    assert_eq!(card["holder"]["kind"], "licensed");
    assert_eq!(card["pin"], json!({ "state": "tries_left", "tries_left": 5 }));
    assert!(card["session"].is_null());

    // The command line logs in through the running agent.
    let (code, out, err) =
        tokio::task::block_in_place(|| agent.cli(&["login", "--reader", &reader, "--pin-stdin"], &format!("{PIN}\n")))?;
    assert_eq!(code, 0, "login failed: {out}{err}\n{}", agent.log());
    assert!(out.contains("logged in: ") && out.contains("doctor"), "{out}");

    let (status, who) = whoami(&agent).await?;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["person"]["role"], "doctor");
    assert_eq!(who["person"]["profession"], "doctor");
    assert_eq!(who["terminal"], format!("{CLINIC}/desk-1"));

    // The login at the gateway was a card login from this terminal.
    let entries = d.world.audit().await;
    let login = entries.iter().rev().find(|e| e.event.action == "auth.login").context("login audited")?;
    assert_eq!(login.event.outcome, "ok");
    assert_eq!(login.event.terminal, format!("{CLINIC}/desk-1"));

    // The PIN never reaches the log.
    assert!(!agent.log().contains(PIN), "the agent logged the PIN");

    // Logout from the command line ends the gateway session.
    let (code, out, err) = tokio::task::block_in_place(|| agent.cli(&["logout"], ""))?;
    assert_eq!(code, 0, "{out}{err}");
    let (status, body) = whoami(&agent).await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "not_logged_in");
    let logout = d.world.audit().await.into_iter().rev().find(|e| e.event.action == "auth.logout");
    assert_eq!(logout.map(|e| e.event.outcome), Some("ok".to_string()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pins_show_the_tries_left_and_a_blocked_card_never_reaches_the_gateway() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.card(Profession::Doctor, "D-2002", CLINIC).await?;
    let card = start_card(&d.pcscd, 0, &image)?;
    let reader = d.pcscd.reader(0);
    let agent = d.agent(&d.terminal, 300).await?;
    agent.wait_card_read(&reader).await?;

    card.clear_apdu_log()?;
    for expected in (1..=4u8).rev() {
        let (status, body) = login(&agent, &reader, wrong_pin()).await?;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "wrong_pin");
        assert_eq!(body["tries_left"], expected);
        assert!(
            body["message"].as_str().unwrap_or_default().contains(&format!("{expected} more wrong PINs")),
            "{body}"
        );
        let s = agent.status().await?;
        assert_eq!(reader_view(&s, &reader).context("reader")?["card"]["pin"]["tries_left"], expected);
        assert_eq!(card.tries_left(Application::Authentication)?, expected, "the card agrees");
    }
    assert!(pin_was_sent(&card), "the wrong PINs went to the card");
    // The fifth wrong PIN blocks the card.
    let (status, body) = login(&agent, &reader, wrong_pin()).await?;
    assert_eq!(status, 423, "{body}");
    assert_eq!(body["error"], "card_blocked");
    let s = agent.status().await?;
    assert_eq!(reader_view(&s, &reader).context("reader")?["card"]["pin"]["state"], "blocked");

    // Blocked: even the right PIN goes nowhere, and the card is not asked
    // to verify anything.
    let logins_before = d.world.audit().await.iter().filter(|e| e.event.action.starts_with("auth.")).count();
    card.clear_apdu_log()?;
    let (status, body) =
        agent.api_lang("POST", "/api/v1/login", Some(json!({ "reader": reader, "pin": PIN })), "ja").await?;
    assert_eq!(status, 423, "{body}");
    assert_eq!(body["error"], "card_blocked");
    assert!(body["message"].as_str().unwrap_or_default().contains("ロック"), "{body}");
    assert!(!pin_was_sent(&card), "a PIN reached the blocked card");
    let logins_after = d.world.audit().await.iter().filter(|e| e.event.action.starts_with("auth.")).count();
    assert_eq!(logins_before, logins_after, "a login attempt reached the gateway");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulling_the_card_ends_the_gateway_session_within_a_second() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.card(Profession::Nurse, "N-3003", CLINIC).await?;
    let mut card = start_card(&d.pcscd, 0, &image)?;
    let reader = d.pcscd.reader(0);
    let agent = d.agent(&d.terminal, 300).await?;
    agent.wait_card_read(&reader).await?;
    let (status, body) = login(&agent, &reader, PIN).await?;
    assert_eq!(status, 200, "{body}");
    let person = body["person"]["id"].as_str().context("person id")?.to_owned();
    assert_eq!(whoami(&agent).await?.0, 200);

    let pulled = Instant::now();
    tokio::task::block_in_place(|| card.control("remove"))?;
    // The gateway's own record says when the session ended.
    let ended = loop {
        let entries = d.world.audit().await;
        if let Some(e) = entries
            .iter()
            .find(|e| e.event.action == "auth.logout" && e.event.actor == person && e.event.outcome == "ok")
        {
            break e.clone();
        }
        anyhow::ensure!(pulled.elapsed() < Duration::from_secs(5), "no logout at the gateway\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = pulled.elapsed();
    println!("card pulled → gateway session ended in {} ms", took.as_millis());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(ended.event.terminal, format!("{CLINIC}/desk-1"));

    // The UI is back at the start screen: no card, nobody logged in.
    let s = agent
        .wait_for(Duration::from_secs(2), |s| reader_view(s, &reader).is_some_and(|r| r["card"].is_null()))
        .await?;
    assert!(s["active_reader"].is_null());
    assert_eq!(whoami(&agent).await?.1["error"], "not_logged_in");

    // Put back, the card is read again but not logged in.
    tokio::task::block_in_place(|| card.insert())?;
    let s = agent.wait_card_read(&reader).await?;
    assert!(reader_view(&s, &reader).context("reader")?["card"]["session"].is_null());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_locks_when_idle_and_the_pin_unlocks_it() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.card(Profession::Pharmacist, "P-4004", CLINIC).await?;
    let _card = start_card(&d.pcscd, 0, &image)?;
    let reader = d.pcscd.reader(0);
    let agent = d.agent(&d.terminal, 2).await?;
    agent.wait_card_read(&reader).await?;
    let (status, body) = login(&agent, &reader, PIN).await?;
    assert_eq!(status, 200, "{body}");

    // Nobody touches anything; reading the status is not use.
    let idle = Instant::now();
    agent.wait_for(Duration::from_secs(10), |s| s["locked"] == true).await?;
    let took = idle.elapsed();
    assert!(took >= Duration::from_millis(1500), "locked after only {took:?}");
    let (status, body) = whoami(&agent).await?;
    assert_eq!(status, 423, "{body}");
    assert_eq!(body["error"], "locked");

    // A wrong PIN keeps it locked and says so.
    let (status, body) = login(&agent, &reader, wrong_pin()).await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(agent.status().await?["locked"], true);

    let (status, body) = login(&agent, &reader, PIN).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(agent.status().await?["locked"], false);
    let (status, who) = whoami(&agent).await?;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["person"]["role"], "pharmacist");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assistant_logs_in_at_their_institution_and_is_refused_at_another() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.assistant_card(CLINIC, "S-77").await?;
    let mut card = start_card(&d.pcscd, 0, &image)?;
    let reader = d.pcscd.reader(0);

    let agent = d.agent(&d.terminal, 300).await?;
    let s = agent.wait_card_read(&reader).await?;
    assert_eq!(reader_view(&s, &reader).context("reader")?["card"]["holder"]["kind"], "assistant");
    let (status, body) = login(&agent, &reader, PIN).await?;
    assert_eq!(status, 200, "{body}");
    let (_, who) = whoami(&agent).await?;
    assert_eq!(who["person"]["role"], "assistant");
    assert_eq!(who["person"]["institution"], CLINIC);
    drop(agent);

    // The same card at another institution's terminal.
    d.world.ensure_institution("Hokuriku Hospital").await?;
    let other = d.world.terminal("Hokuriku Hospital", "ward-3")?;
    tokio::task::block_in_place(|| -> Result<()> {
        card.remove()?;
        card.insert()
    })?;
    let agent = d.agent(&other, 300).await?;
    agent.wait_card_read(&reader).await?;
    let (status, body) =
        agent.api_lang("POST", "/api/v1/login", Some(json!({ "reader": reader, "pin": PIN })), "ja").await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "gateway_refused:assistant_wrong_institution");
    assert!(body["message"].as_str().unwrap_or_default().contains("別の医療機関"), "{body}");
    let (_, body) = login(&agent, &reader, PIN).await?;
    assert!(body["message"].as_str().unwrap_or_default().contains("belongs to another institution"), "{body}");
    let (status, _) = whoami(&agent).await?;
    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cards_at_one_desk_the_user_picks_which_acts() -> Result<()> {
    let mut d = desk().await?;
    let doctor = d.world.card(Profession::Doctor, "D-5005", CLINIC).await?;
    let assistant = d.world.assistant_card(CLINIC, "S-88").await?;
    let _c0 = start_card(&d.pcscd, 0, &doctor)?;
    let _c1 = start_card(&d.pcscd, 1, &assistant)?;
    let (r0, r1) = (d.pcscd.reader(0), d.pcscd.reader(1));
    let agent = d.agent(&d.terminal, 300).await?;
    agent.wait_card_read(&r0).await?;
    agent.wait_card_read(&r1).await?;

    // Without naming a reader the agent does not guess between two cards.
    let (status, body) = agent.api("POST", "/api/v1/login", Some(json!({ "pin": PIN }))).await?;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("name the reader"), "{body}");

    assert_eq!(login(&agent, &r1, PIN).await?.0, 200);
    assert_eq!(whoami(&agent).await?.1["person"]["role"], "assistant");
    assert_eq!(login(&agent, &r0, PIN).await?.0, 200);
    assert_eq!(whoami(&agent).await?.1["person"]["role"], "doctor", "the last login acts");

    let (status, body) = agent.api("POST", "/api/v1/select", Some(json!({ "reader": r1 }))).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(whoami(&agent).await?.1["person"]["role"], "assistant");
    let s = agent.status().await?;
    assert_eq!(s["active_reader"], r1.as_str());
    assert!(!reader_view(&s, &r0).context("r0")?["card"]["session"].is_null(), "the doctor stays logged in");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_is_said_plainly_and_the_pin_is_not_used() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.card(Profession::Dentist, "DD-6006", CLINIC).await?;
    let card = start_card(&d.pcscd, 0, &image)?;
    let reader = d.pcscd.reader(0);
    let ca = d.world.path("server/ca-chain.pem");
    // A port nobody listens on.
    let dead: std::net::SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let agent = AgentProcess::start(
        &d.pcscd,
        AgentOptions { gateway: dead, gateway_ca: &ca, terminal: &d.terminal, idle_lock_seconds: 300, language: "en" },
    )
    .await?;
    agent.wait_card_read(&reader).await?;
    card.clear_apdu_log()?;
    let (status, body) = login(&agent, &reader, PIN).await?;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "gateway_unreachable");
    assert!(body["message"].as_str().unwrap_or_default().contains("Cannot reach the gateway"), "{body}");
    assert!(!pin_was_sent(&card), "the PIN was sent although the gateway was unreachable");
    assert_eq!(card.tries_left(Application::Authentication)?, 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_command_lists_readers_holders_and_tries() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.card(Profession::RegisteredDietitian, "R-7007", CLINIC).await?;
    let _card = start_card(&d.pcscd, 0, &image)?;
    let agent = d.agent(&d.terminal, 300).await?;
    agent.wait_card_read(&d.pcscd.reader(0)).await?;
    let (code, out, err) = tokio::task::block_in_place(|| agent.cli(&["cards", "--json"], ""))?;
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out)?;
    let readers = list.as_array().context("array")?;
    assert_eq!(readers.len(), 2, "{out}");
    let first = &readers[0];
    assert_eq!(first["card_present"], true);
    assert_eq!(first["holder"]["profession"], "dietitian");
    assert_eq!(first["pin"]["tries_left"], 5);
    assert_eq!(readers[1]["card_present"], false);

    let (code, out, _) = tokio::task::block_in_place(|| agent.cli(&["cards"], ""))?;
    assert_eq!(code, 0);
    assert!(out.contains("dietitian") && out.contains("5 tries left") && out.contains("no card"), "{out}");

    // Without a running agent, login says so.
    let mut agent = agent;
    agent.stop();
    let (code, _, err) = tokio::task::block_in_place(|| agent.cli(&["login", "--pin-stdin"], &format!("{PIN}\n")))?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no card-agent is running"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_api_wants_its_token_and_a_loopback_host() -> Result<()> {
    let d = desk().await?;
    let agent = d.agent(&d.terminal, 300).await?;
    let token = agent.token().to_owned();
    let ask = |host: &str, auth: &str| {
        agent
            .raw(&format!("GET /api/v1/status HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"))
            .map(|a| a.lines().next().unwrap_or_default().to_owned())
    };
    let here = agent.address.to_string();
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert!(ask(&here, &bearer)?.contains(" 200 "), "the right token on the loopback host");
    // DNS rebinding: a page of evil.example resolving to 127.0.0.1.
    assert!(ask("evil.example", &bearer)?.contains(" 421 "), "foreign Host accepted");
    assert!(ask(&format!("evil.example:{}", agent.address.port()), &bearer)?.contains(" 421 "));
    assert!(ask(&here, "")?.contains(" 401 "), "no token accepted");
    assert!(ask(&here, "Authorization: Bearer wrong\r\n")?.contains(" 401 "), "wrong token accepted");
    // The UI's calls want the page's CSRF token instead, and a loopback origin.
    let post = |extra: &str| {
        agent
            .raw(&format!(
                "POST /ui/login HTTP/1.1\r\nHost: {here}\r\n{extra}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            ))
            .map(|a| a.lines().next().unwrap_or_default().to_owned())
    };
    assert!(post("")?.contains(" 403 "), "UI call without CSRF token accepted");
    assert!(post(&bearer)?.contains(" 403 "), "the API token is not a CSRF token");
    let page = agent.raw(&format!("GET / HTTP/1.1\r\nHost: {here}\r\nConnection: close\r\n\r\n"))?;
    let csrf = page
        .split("<meta name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("CSRF token in the page")?
        .to_owned();
    let with_csrf = format!("X-CSRF-Token: {csrf}\r\n");
    // A login without reader and PIN is refused — but past the guard.
    assert!(post(&with_csrf)?.contains(" 400 "), "the page's token passes the guard");
    let foreign = format!("{with_csrf}Origin: http://evil.example\r\n");
    assert!(post(&foreign)?.contains(" 403 "), "a foreign Origin with a stolen token accepted");
    Ok(())
}

/// FLOW-2 at the desk: the doctor sees exactly the bytes the card signs,
/// types the signature PIN, and the gateway holds the record; a draft that
/// changed after review is never signed; one PIN entry confirms a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doctor_confirms_through_the_agent_after_seeing_the_exact_bytes() -> Result<()> {
    let mut d = desk().await?;
    let (doctor_image, doctor) = d.world.person_card(Profession::Doctor, "D-7001", CLINIC).await?;
    let assistant_image = d.world.assistant_card(CLINIC, "A-7").await?;
    let assistant = format!("{CLINIC}/A-7");
    d.world.link(&assistant, &doctor).await?;
    let doctor_card = start_card(&d.pcscd, 0, &doctor_image)?;
    let _assistant_card = start_card(&d.pcscd, 1, &assistant_image)?;
    let reader = d.pcscd.reader(0);
    let agent = d.agent(&d.terminal, 300).await?;
    agent.wait_card_read(&reader).await?;
    let (status, body) = login(&agent, &reader, PIN).await?;
    assert_eq!(status, 200, "{body}");

    // The assistant, at the reception terminal, drafts for the doctor.
    d.pcscd.use_in_this_process()?;
    let ctx = hpki_card::PcscContext::establish()?;
    ctx.wait_for_card(&d.pcscd.reader(1), Duration::from_secs(5))?;
    let mut a_card = ctx.connect(&d.pcscd.reader(1))?;
    let reception = d.world.terminal(CLINIC, "reception")?;
    let mut c = d.world.connect(&reception).await?;
    let a = hpki_e2e::session(&mut c, &mut a_card).await?;
    let (_, p) = c.post("/v1/patients", &json!({"name": "Abe Rin", "birth_date": "1970-07-07"}), Some(&a)).await?;
    let (_, enc) = c.post("/v1/encounters", &json!({"patient": p["id"]}), Some(&a)).await?;
    let mut drafts = Vec::new();
    for text in ["ロキソプロフェン 60mg 3錠 分3", "再診 2週間後", "採血: HbA1c"] {
        let (status, dr) = c
            .post("/v1/drafts", &json!({"encounter": enc["id"], "doctor": doctor, "content": {"text": text}}), Some(&a))
            .await?;
        assert_eq!(status, 201, "{dr}");
        drafts.push(dr["id"].as_str().context("id")?.to_owned());
    }

    // The queue, then one confirm from the command line: the document is
    // printed before the PIN is read.
    let (code, out, err) = tokio::task::block_in_place(|| agent.cli(&["queue"], ""))?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(drafts.iter().all(|id| out.contains(id)), "{out}");
    let (code, out, err) = tokio::task::block_in_place(|| {
        agent.cli(&["confirm", "--draft", &drafts[0], "--pin-stdin"], &format!("{PIN}\n"))
    })?;
    assert_eq!(code, 0, "{out}{err}\n{}", agent.log());
    assert!(
        out.contains(r#""domain":"HPKI-GATEWAY-CONFIRM-V2""#) && out.contains("ロキソプロフェン 60mg 3錠 分3"),
        "{out}"
    );
    assert!(out.contains(&format!("confirmed {} → record rec_", drafts[0])), "{out}");

    // Reviewed, then changed: the agent refuses before the card signs.
    let (_, reviewed) =
        agent.api("GET", &format!("/api/v1/gateway/v1/drafts/{}/signing-bytes", drafts[1]), None).await?;
    let (status, _) = c
        .put(
            &format!("/v1/drafts/{}", drafts[1]),
            &json!({"version": 1, "content": {"text": "再診 1週間後"}}),
            Some(&a),
        )
        .await?;
    assert_eq!(status, 200);
    doctor_card.clear_apdu_log()?;
    let item = json!({"draft": drafts[1], "version": 2, "sha256": reviewed["sha256"]});
    let (status, body) = agent.api("POST", "/api/v1/confirm", Some(json!({"items": [item], "pin": PIN}))).await?;
    assert_eq!((status, body["error"].as_str()), (409, Some("content_changed")), "{body}");
    assert!(!doctor_card.logged_ins().contains(&0x2A), "nothing was signed");
    let stale = json!({"draft": drafts[1], "version": 1, "sha256": reviewed["sha256"]});
    let (status, body) = agent.api("POST", "/api/v1/confirm", Some(json!({"items": [stale], "pin": PIN}))).await?;
    assert_eq!((status, body["error"].as_str()), (409, Some("gateway_refused:stale_version")), "{body}");

    // A wrong signature PIN: the signature application's own counter.
    let (_, fresh) = agent.api("GET", &format!("/api/v1/gateway/v1/drafts/{}/signing-bytes", drafts[1]), None).await?;
    let item = json!({"draft": drafts[1], "version": 2, "sha256": fresh["sha256"]});
    let (status, body) =
        agent.api("POST", "/api/v1/confirm", Some(json!({"items": [item.clone()], "pin": wrong_pin()}))).await?;
    assert_eq!(
        (status, body["error"].as_str(), body["tries_left"].as_u64()),
        (401, Some("wrong_pin"), Some(4)),
        "{body}"
    );
    assert_eq!(doctor_card.tries_left(Application::Signature)?, 4);
    assert_eq!(doctor_card.tries_left(Application::Authentication)?, 5, "the login PIN is untouched");

    // Batch: two reviewed drafts, one PIN, a signature each.
    let (_, third) = agent.api("GET", &format!("/api/v1/gateway/v1/drafts/{}/signing-bytes", drafts[2]), None).await?;
    let batch = json!({"items": [item, {"draft": drafts[2], "version": 1, "sha256": third["sha256"]}], "pin": PIN});
    let (status, body) = agent.api("POST", "/api/v1/confirm", Some(batch)).await?;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().context("results")?;
    assert!(results.len() == 2 && results.iter().all(|r| r["record"]["signer"] == doctor.as_str()), "{body}");
    assert_eq!(doctor_card.tries_left(Application::Signature)?, 5, "a good PIN resets the counter");
    let (_, q) = agent.api("GET", "/api/v1/gateway/v1/queue", None).await?;
    assert_eq!(q["drafts"].as_array().map(Vec::len), Some(0), "{q}");
    assert!(!agent.log().contains(PIN), "the agent logged a PIN");
    Ok(())
}

/// Issue 18, 5: any local process can read the page and its CSRF token; with
/// it alone it must not act with the doctor's session, nor hold the idle
/// lock off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_process_with_the_page_token_cannot_use_the_doctors_session_or_hold_off_the_lock() -> Result<()> {
    let mut d = desk().await?;
    let image = d.world.card(Profession::Doctor, "D-5005", CLINIC).await?;
    let _card = start_card(&d.pcscd, 0, &image)?;
    let reader = d.pcscd.reader(0);
    let agent = d.agent(&d.terminal, 2).await?;
    agent.wait_card_read(&reader).await?;
    let (status, body) = login(&agent, &reader, PIN).await?;
    assert_eq!(status, 200, "{body}");
    let here = agent.address.to_string();
    let page = agent.raw(&format!("GET / HTTP/1.1\r\nHost: {here}\r\nConnection: close\r\n\r\n"))?;
    let csrf = page
        .split("<meta name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("CSRF token in the page")?
        .to_owned();
    let status_line = |a: String| a.lines().next().unwrap_or_default().to_owned();
    let whoami = agent.raw(&format!(
        "GET /ui/gateway/v1/auth/whoami HTTP/1.1\r\nHost: {here}\r\nX-CSRF-Token: {csrf}\r\nConnection: close\r\n\r\n"
    ))?;
    assert!(status_line(whoami.clone()).contains(" 403 "), "the doctor's session used without a PIN: {whoami}");
    assert!(whoami.contains("ui_proof"), "{whoami}");
    // Pinging the page's activity endpoint does not keep the desk unlocked.
    let ping = format!(
        "POST /ui/activity HTTP/1.1\r\nHost: {here}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let answer = agent.raw(&ping)?;
        assert!(status_line(answer.clone()).contains(" 403 "), "{answer}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(agent.status().await?["locked"], true, "the idle lock was held off by a process without input");
    Ok(())
}
