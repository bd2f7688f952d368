//! Fuzzing the request surface (issue 18): mutated JSON bodies for every
//! body-taking endpoint of both listeners, sent over the real TLS
//! listeners to a running gateway with real sessions, so that each input
//! goes through the layers, the decoding and the handler's checks as a
//! client's would.
//!
//! Each answer must be a success, or a refusal whose body is the protocol's
//! error (`{"error": code, "message": …}`) with a code of the protocol's
//! table and the status that code has — never `internal`, never a dropped
//! connection. After the run the audit chain verifies, no staged entry is
//! left in the outbox, and the gateway still answers.
//!
//! The mutator is seeded (`API_FUZZ_SEED`, printed) so a failure can be
//! replayed; `API_FUZZ_INPUTS` sets the inputs per listener (default 1,500
//! in `make test`; the note's million-input runs use
//! `API_FUZZ_INPUTS=1000000 TMPDIR=/dev/shm`). Not coverage-guided: the
//! mutations start from valid bodies of every endpoint, which keeps most
//! inputs close enough to reach the handlers' own checks.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use hpki_e2e::{PatientClient, World, WorldOptions, insert_card, private_pcscd, session};
use hpki_profile::Profession;
use hpki_protocol::ErrorCode;
use serde_json::{Value, json};

const CLINIC: &str = "Kanazawa Clinic";

/// A small, fast, seedable generator (xorshift64*): inputs must replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Tokens that stress JSON decoders and the checks behind them.
const TOKENS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "-0",
    "9223372036854775808",
    "1.5",
    "\"\"",
    "[]",
    "{}",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"P\"",
    "\"../../etc/passwd\"",
    "\"' OR 1=1 --\"",
    "\"\u{202e}\"",
    "\"山田\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ",",
    ":",
    "\"",
    "{",
    "}",
    "\"version\":",
    "\"content\":",
    "\"\\\"\"",
];

/// One input: a seed body, mutated one to four times.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => b.insert(at, rng.next() as u8),
            2 if !b.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            4 => {
                // Replace a JSON value (after a colon) with a token.
                if let Some(colon) = b.iter().enumerate().skip(at).find(|(_, c)| **c == b':').map(|(i, _)| i) {
                    let end =
                        b[colon + 1..].iter().position(|c| *c == b',' || *c == b'}').map_or(b.len(), |p| colon + 1 + p);
                    let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                    b.splice(colon + 1..end, t.iter().copied());
                }
            }
            5 => {
                // Splice a piece of another seed.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = (from + rng.below(32)).min(other.len());
                b.splice(at..at, other[from..to].iter().copied());
            }
            6 => {
                // A long run: big strings and numbers.
                let c = [b'a', b'9', b' ', 0xe3][rng.below(4)];
                b.splice(at..at, std::iter::repeat_n(c, 1 + rng.below(4096)));
            }
            _ if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
    b
}

/// Checks one answer; `Ok(label)` for the tally.
fn judge(status: u16, body: &Value) -> Result<String> {
    if (200..300).contains(&status) {
        return Ok(format!("{status}"));
    }
    let code = body["error"].as_str().with_context(|| format!("{status} without an error code: {body}"))?;
    let known = ErrorCode::from_wire(code).with_context(|| format!("{status} with an unknown code {code:?}"))?;
    anyhow::ensure!(known.status() == status, "{code} answered {status}, the table says {}", known.status());
    anyhow::ensure!(known != ErrorCode::Internal, "an internal error: {body}");
    anyhow::ensure!(body["message"].is_string(), "{code} without a message: {body}");
    Ok(code.to_owned())
}

fn inputs() -> usize {
    std::env::var("API_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_500)
}

fn seed() -> u64 {
    std::env::var("API_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    })
}

fn print_tally(what: &str, n: usize, seed: u64, tally: &BTreeMap<String, usize>, secs: f64) {
    println!("{what}: {n} inputs (seed {seed}) in {secs:.1} s = {:.0}/s", n as f64 / secs);
    for (k, v) in tally {
        println!("  {k:<28} {v}");
    }
}

/// An endpoint to fuzz: method, path, whose session, seed bodies.
type Target<'a> = (&'static str, String, Option<&'a str>, Vec<Vec<u8>>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_institution_api_answers_every_mutated_body_with_a_protocol_answer() -> Result<()> {
    let mut world = World::start(WorldOptions { requests_per_second: 1_000_000, ..Default::default() }).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let assistant_image = world.assistant_card(CLINIC, "A-001").await?;
    let assistant = format!("{CLINIC}/A-001");
    let (doctor_image, doctor) = world.person_card(Profession::Doctor, "700001", CLINIC).await?;
    world.link(&assistant, &doctor).await?;
    let pcscd = private_pcscd()?;
    let mut a_slot = insert_card(&pcscd, 0, &assistant_image)?;
    let mut d_slot = insert_card(&pcscd, 1, &doctor_image)?;
    let mut client = world.connect(&creds).await?;
    let a = session(&mut client, &mut a_slot.card).await?;
    let d = session(&mut client, &mut d_slot.card).await?;

    // Valid state for the seeds to name.
    let (_, p) =
        client.post("/v1/patients", &json!({"name": "Fuzz Taro", "birth_date": "1970-01-01"}), Some(&a)).await?;
    let pid = p["id"].as_str().context("patient")?.to_owned();
    let (_, e) = client.post("/v1/encounters", &json!({"patient": pid}), Some(&a)).await?;
    let enc = e["id"].as_str().context("encounter")?.to_owned();
    let (_, dr) = client
        .post("/v1/drafts", &json!({"encounter": enc, "doctor": doctor, "content": {"note": "x"}}), Some(&a))
        .await?;
    let did = dr["id"].as_str().context("draft")?.to_owned();
    let challenge = client.challenge().await?;
    let login = hpki_e2e::signed_login(&mut a_slot.card, &challenge, &client.channel_binding)?;
    let signing = hpki_e2e::signed_attributes(&mut client, &mut d_slot.card, &did, None, &d).await?.1;
    let confirm = hpki_e2e::signed_confirm(&mut d_slot.card, &signing)?;
    world.gw.store.designate_break_glass(&doctor, "admin:test", 0, None).await?;

    let to_vec = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    let targets: Vec<Target> = vec![
        ("POST", "/v1/auth/challenge".into(), None, vec![to_vec(&json!({}))]),
        ("POST", "/v1/auth/login".into(), None, vec![to_vec(&login)]),
        (
            "POST",
            "/v1/patients".into(),
            Some(&a),
            vec![to_vec(&json!({"name": "Yamada Hanako", "name_kanji": "山田 花子", "birth_date": "1950-04-01"}))],
        ),
        ("POST", "/v1/encounters".into(), Some(&a), vec![to_vec(&json!({"patient": pid}))]),
        (
            "POST",
            "/v1/drafts".into(),
            Some(&a),
            vec![to_vec(
                &json!({"encounter": enc, "doctor": doctor, "content": {"type": "vital_signs", "bp": "120/80"}}),
            )],
        ),
        ("PUT", format!("/v1/drafts/{did}"), Some(&a), vec![to_vec(&json!({"version": 1, "content": {"note": "y"}}))]),
        ("POST", format!("/v1/drafts/{did}/confirm"), Some(&d), vec![to_vec(&confirm)]),
        (
            "POST",
            "/v1/confirm-batch".into(),
            Some(&d),
            vec![to_vec(&json!({"certificate": confirm["certificate"], "items": [
                {"draft": did, "version": confirm["version"], "signature": confirm["signature"]}]}))],
        ),
        ("POST", "/v1/notes".into(), Some(&d), vec![to_vec(&json!({"encounter": enc, "content": {"text": "所見"}}))]),
        (
            "POST",
            "/v1/break-glass".into(),
            Some(&d),
            vec![to_vec(&json!({"patient": pid, "reason": "emergency_treatment", "detail": "搬送"}))],
        ),
        (
            "POST",
            "/v1/corrections/cor_nothing/resolve".into(),
            Some(&d),
            vec![to_vec(&json!({"decision": "accepted", "text": "訂正"}))],
        ),
    ];
    let all_seeds: Vec<Vec<u8>> = targets.iter().flat_map(|t| t.3.clone()).collect();

    let (n, seed) = (inputs(), seed());
    let mut rng = Rng(seed);
    let mut tally = BTreeMap::new();
    let started = std::time::Instant::now();
    for i in 0..n {
        let (method, path, who, seeds) = &targets[i % targets.len()];
        // Mostly the endpoint's own seeds, sometimes any endpoint's.
        let body = if rng.below(8) == 0 { mutate(&mut rng, &all_seeds) } else { mutate(&mut rng, seeds) };
        let (status, answer) = match client.request(method, path, body.clone(), *who).await {
            Ok(a) => a,
            Err(e) => {
                anyhow::bail!("input {i} (seed {seed}) to {method} {path}: {e:#}\n{}", String::from_utf8_lossy(&body))
            }
        };
        let label = judge(status, &answer).with_context(|| {
            format!("input {i} (seed {seed}) to {method} {path}: {}", String::from_utf8_lossy(&body))
        })?;
        // Ids in paths shown as {id}, so that the tally is per endpoint.
        let endpoint: Vec<&str> = path.split('/').map(|s| if s.len() > 16 { "{id}" } else { s }).collect();
        *tally.entry(format!("{method} {} {label}", endpoint.join("/"))).or_insert(0) += 1;
    }
    print_tally("institution API", n, seed, &tally, started.elapsed().as_secs_f64());

    // Still serving, the chain whole, nothing staged left behind.
    let (status, _) = client.get("/v1/auth/whoami", Some(&a)).await?;
    anyhow::ensure!(status == 200, "whoami after the run: {status}");
    anyhow::ensure!(world.chain_verifies().await, "the audit chain does not verify after the run");
    anyhow::ensure!(world.outbox_once_cleaned().await?.is_empty(), "staged entries left in the outbox");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_api_answers_every_mutated_body_with_a_protocol_answer() -> Result<()> {
    let world = World::start(WorldOptions { patients: true, ..Default::default() }).await?;
    let (pid, initial) = world.enrolled_patient(CLINIC).await?;
    let mut p = PatientClient::new(&world)?;
    let (status, s) = p.request("POST", "/p/v1/login", Some(&json!({"id": pid, "password": initial}))).await?;
    anyhow::ensure!(status == 200, "login: {s}");
    p.token = s["session"].as_str().map(str::to_owned);
    // Replaced first, so that the rights endpoints get past AUTH-4 and
    // their bodies are parsed.
    let (status, _) =
        p.request("POST", "/p/v1/password", Some(&json!({"current": initial, "new": "fuzz-no-mori-2026"}))).await?;
    anyhow::ensure!(status == 204, "password change: {status}");
    let to_vec = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    let targets: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("/p/v1/login", vec![to_vec(&json!({"id": pid, "password": "wrong password 1"}))]),
        ("/p/v1/password", vec![to_vec(&json!({"current": "wrong password 2", "new": "a much longer new one 3"}))]),
        ("/p/v1/corrections", vec![to_vec(&json!({"record": "rec_nothing", "text": "訂正をお願いします"}))]),
        ("/p/v1/consents", vec![to_vec(&json!({"institution": CLINIC, "share": true}))]),
    ];
    let all_seeds: Vec<Vec<u8>> = targets.iter().flat_map(|t| t.1.clone()).collect();
    let mut conn = p.keep_alive().await?;

    let (n, seed) = (inputs(), seed());
    let mut rng = Rng(seed);
    let mut tally = BTreeMap::new();
    let started = std::time::Instant::now();
    for i in 0..n {
        let (path, seeds) = &targets[i % targets.len()];
        let body = if rng.below(8) == 0 { mutate(&mut rng, &all_seeds) } else { mutate(&mut rng, seeds) };
        let (status, answer) = match conn.send("POST", path, body.clone()).await {
            Ok(a) => a,
            Err(e) => anyhow::bail!("input {i} (seed {seed}) to {path}: {e:#}\n{}", String::from_utf8_lossy(&body)),
        };
        let label = judge(status, &answer)
            .with_context(|| format!("input {i} (seed {seed}) to {path}: {}", String::from_utf8_lossy(&body)))?;
        *tally.entry(format!("{path} {label}")).or_insert(0) += 1;
    }
    print_tally("patient API", n, seed, &tally, started.elapsed().as_secs_f64());
    anyhow::ensure!(world.chain_verifies().await, "the audit chain does not verify after the run");
    anyhow::ensure!(world.outbox_once_cleaned().await?.is_empty(), "staged entries left in the outbox");
    Ok(())
}

/// The card agent's answers: its own codes (`card-agent/src/error.rs`), the
/// gateway's refusal of its own calls (`gateway_refused:…`), or the
/// gateway's answer passed through as it is.
const AGENT_CODES: &[&str] = &[
    "unknown_reader",
    "no_card",
    "card_changed",
    "card_blocked",
    "wrong_pin",
    "pin_format",
    "card_removed",
    "not_logged_in",
    "locked",
    "bad_request",
    "content_changed",
];

fn judge_agent(status: u16, body: &Value) -> Result<String> {
    if (200..300).contains(&status) {
        return Ok(format!("{status}"));
    }
    let code = body["error"].as_str().with_context(|| format!("{status} without an error code: {body}"))?;
    anyhow::ensure!(body["message"].is_string(), "{code} without a message: {body}");
    if let Some(gateway) = code.strip_prefix("gateway_refused:") {
        let known = ErrorCode::from_wire(gateway).with_context(|| format!("the gateway's unknown code {gateway:?}"))?;
        anyhow::ensure!(known.status() == status, "{code} passed on as {status}");
        anyhow::ensure!(known != ErrorCode::Internal, "an internal error at the gateway: {body}");
        return Ok(code.to_owned());
    }
    if AGENT_CODES.contains(&code) {
        return Ok(code.to_owned());
    }
    // The pass-through answers with the gateway's own answer.
    if let Some(known) = ErrorCode::from_wire(code) {
        anyhow::ensure!(known.status() == status, "the gateway's {code} passed through as {status}");
        anyhow::ensure!(known != ErrorCode::Internal, "an internal error at the gateway: {body}");
        return Ok(format!("gateway {code}"));
    }
    // gateway_unreachable, gateway_error, bad_document, card_error: the
    // gateway and the card are right there; none of them may happen here.
    anyhow::bail!("{status} {code}: {body}")
}

/// The agent's local API (`/api/v1/…`, with its token): login, select,
/// logout, confirm and the gateway pass-through, with a doctor's card in
/// the reader and logged in. Mutated PINs may block the card: the answers
/// must stay well-formed all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_local_api_answers_every_mutated_body_with_a_well_formed_answer() -> Result<()> {
    use hpki_e2e::{AgentOptions, AgentProcess, PIN};
    let mut world = World::start(WorldOptions { requests_per_second: 1_000_000, ..Default::default() }).await?;
    let terminal = world.terminal(CLINIC, "desk-1")?;
    world.ensure_institution(CLINIC).await?;
    let pcscd = testbed::PrivatePcscd::start()?;
    let image = world.card(Profession::Doctor, "D-7001", CLINIC).await?;
    let _card = testbed::CardProcess::start(&pcscd, 0, &image)?;
    let reader = pcscd.reader(0);
    let ca = world.path("server/ca-chain.pem");
    let agent = AgentProcess::start(
        &pcscd,
        AgentOptions {
            gateway: world.addr,
            gateway_ca: &ca,
            terminal: &terminal,
            idle_lock_seconds: 3600,
            language: "en",
        },
    )
    .await?;
    agent.wait_card_read(&reader).await?;
    let (status, who) = agent.api("POST", "/api/v1/login", Some(json!({"reader": reader, "pin": PIN}))).await?;
    anyhow::ensure!(status == 200, "login: {who}");
    let (_, p) = agent
        .api("POST", "/api/v1/gateway/v1/patients", Some(json!({"name": "Fuzz Hanako", "birth_date": "1960-02-02"})))
        .await?;
    let pid = p["id"].as_str().with_context(|| format!("patient: {p}"))?.to_owned();

    let to_vec = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    let targets: Vec<(&str, &str, Vec<Vec<u8>>)> = vec![
        ("POST", "/api/v1/login", vec![to_vec(&json!({"reader": reader, "pin": PIN}))]),
        ("POST", "/api/v1/select", vec![to_vec(&json!({"reader": reader}))]),
        ("POST", "/api/v1/logout", vec![to_vec(&json!({"reader": reader}))]),
        (
            "POST",
            "/api/v1/confirm",
            vec![to_vec(&json!({"items": [{"draft": "drf_x", "version": 1, "sha256": "00".repeat(32)}], "pin": PIN}))],
        ),
        ("POST", "/api/v1/gateway/v1/encounters", vec![to_vec(&json!({"patient": pid}))]),
        (
            "POST",
            "/api/v1/gateway/v1/patients",
            vec![to_vec(&json!({"name": "Yamada Hanako", "name_kanji": "山田 花子", "birth_date": "1950-04-01"}))],
        ),
    ];
    let all_seeds: Vec<Vec<u8>> = targets.iter().flat_map(|t| t.2.clone()).collect();
    let (n, seed) = (inputs(), seed());
    let mut rng = Rng(seed);
    let mut tally = BTreeMap::new();
    let started = std::time::Instant::now();
    for i in 0..n {
        let (method, path, seeds) = &targets[i % targets.len()];
        let body = if rng.below(8) == 0 { mutate(&mut rng, &all_seeds) } else { mutate(&mut rng, seeds) };
        let answer =
            card_agent::local_client::call(agent.address, agent.token(), method, path, Some(body.clone()), "en").await;
        let (status, answer) = match answer {
            Ok(a) => a,
            Err(e) => anyhow::bail!("input {i} (seed {seed}) to {path}: {e}\n{}", String::from_utf8_lossy(&body)),
        };
        let label = judge_agent(status, &answer)
            .with_context(|| format!("input {i} (seed {seed}) to {path}: {}", String::from_utf8_lossy(&body)))?;
        *tally.entry(format!("{path} {label}")).or_insert(0) += 1;
    }
    print_tally("agent local API", n, seed, &tally, started.elapsed().as_secs_f64());
    // The agent still answers, the gateway's chain is whole.
    anyhow::ensure!(agent.status().await?["readers"].is_array(), "the agent's status after the run");
    anyhow::ensure!(world.chain_verifies().await, "the audit chain does not verify after the run");
    Ok(())
}
