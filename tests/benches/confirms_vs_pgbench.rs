//! Confirms per second next to `pgbench`, in one run on this machine
//! (`bench/confirms-vs-pgbench.sh`).
//!
//! A confirm is everything the gateway does for `POST /v1/drafts/{id}/confirm`
//! over keep-alive mTLS: the session, the checks in their documented order,
//! HPKI path validation of the signature certificate with its CRL, the RSA
//! signature over the document bytes, AES-256-GCM sealing of the record, the
//! draft → record transaction committed durably, and the audit entry
//! committed before the answer. It runs on SQLite (the default) and on the
//! machine's PostgreSQL server; `pgbench`'s built-in TPC-B-like script on the
//! same server, with the same client count, is the reference for "one
//! durable transaction".
//!
//! The doctor's signatures are made ahead of the measurement with the card
//! image's signature key in software: this measures the gateway, not the card
//! (the card layer has its own benchmark; every test signs through pcscd).
//! Rounds alternate SQLite, PostgreSQL, pgbench; medians are printed. Each
//! round first confirms `WARMUP` drafts unmeasured over the same
//! connections (pgbench likewise leaves its connection set-up out).
//!
//! With time-stamps (DATA-4/5): the same confirms on SQLite with the test
//! TSA of the tests (`openssl ts -reply` behind HTTP, one process per
//! token; two tokens per confirm: the signature time-stamp and the archive
//! time-stamp), alone and as batches of 10 drafts under one PIN
//! (`/v1/confirm-batch`: the items are confirmed in turn, each with its own
//! two TSA requests — a SignerInfo needs its own token, and the gateway
//! does not batch them). The TSA's share is its busy time over the
//! connections' time: how much of a confirm's latency is the TSA's.
//!
//! For a profiler: `CONFIRMS_PROFILE=postgres` (or `sqlite`, `sqlite-tsa`,
//! `sqlite-tsa-batch`) runs one round on that store only, with `CONFIRMS_DRAFTS` drafts (default `DRAFTS`); the
//! "measuring" line on standard error marks where the measured part starts.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use hpki_e2e::{GATEWAY_ID, PgDatabase, SoftwareCard, TerminalClient, TsaOptions, World, WorldOptions};
use hpki_profile::Profession;
use serde_json::{Value, json};

const ROUNDS: usize = 3;
/// Drafts confirmed per measured round.
const DRAFTS: usize = 3000;
/// Confirms before the measurement starts, over the same connections:
/// the gateway's database pool opens its connections and prepares its
/// statements then, as pgbench leaves its connection set-up out of its tps.
const WARMUP: usize = 200;
/// Drafts per measured round with time-stamps (each costs two OpenSSL
/// processes at the test TSA).
const TSA_DRAFTS: usize = 400;
/// Drafts per batch under one PIN.
const BATCH: usize = 10;

fn drafts() -> Result<usize> {
    match std::env::var("CONFIRMS_DRAFTS") {
        Ok(n) => n.parse().with_context(|| format!("CONFIRMS_DRAFTS={n:?} is not a count")),
        Err(_) => Ok(DRAFTS),
    }
}
/// Concurrent terminal connections, and pgbench clients.
const CLIENTS: usize = 8;
const PGBENCH_SECONDS: u32 = 10;
const CLINIC: &str = "Bench Clinic";

fn ok(answer: (u16, Value)) -> Result<Value> {
    let (status, body) = answer;
    anyhow::ensure!((200..300).contains(&status), "expected success, got {status}: {body}");
    Ok(body)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// How a round confirms.
#[derive(Clone, Copy)]
struct Mode {
    /// With the test TSA.
    tsa: bool,
    /// Drafts per request: 1 is `/confirm`, more is `/v1/confirm-batch`.
    batch: usize,
}

const PLAIN: Mode = Mode { tsa: false, batch: 1 };

/// What a round measured.
struct Round {
    rate: f64,
    /// The TSA's busy time over the connections' time (with a TSA).
    tsa_share: Option<f64>,
}

/// One measured round on `postgres` (None: SQLite): the confirms per second.
async fn confirm_round(postgres: Option<String>, drafts: usize) -> Result<f64> {
    Ok(round(postgres, drafts, PLAIN).await?.rate)
}

async fn round(postgres: Option<String>, drafts: usize, mode: Mode) -> Result<Round> {
    let tsa = mode.tsa.then(TsaOptions::default);
    let mut world =
        World::start(WorldOptions { postgres, requests_per_second: 10_000_000, tsa, ..Default::default() }).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let assistant = SoftwareCard::load(&world.assistant_card(CLINIC, "A-001").await?)?;
    let (doctor_image, doctor) = world.person_card(Profession::Doctor, "880001", CLINIC).await?;
    let doctor_card = SoftwareCard::load(&doctor_image)?;
    world.link(&format!("{CLINIC}/A-001"), &doctor).await?;

    let mut client = world.connect(&creds).await?;
    let a = assistant.session(&mut client, GATEWAY_ID).await?;
    let patient = ok(client
        .post("/v1/patients", &json!({"name": "Bench Patient", "birth_date": "1970-01-01"}), Some(&a))
        .await?)?;
    let enc = ok(client.post("/v1/encounters", &json!({"patient": patient["id"]}), Some(&a)).await?)?;
    let d = doctor_card.session(&mut client, GATEWAY_ID).await?;
    let mut ready = VecDeque::with_capacity(WARMUP + drafts);
    for n in 0..WARMUP + drafts {
        let content = json!({"type": "progress_note", "n": n, "note": "経過良好。次回は二週間後。", "bp": "124/78"});
        let draft = ok(client
            .post("/v1/drafts", &json!({"encounter": enc["id"], "doctor": doctor, "content": content}), Some(&a))
            .await?)?;
        let id = draft["id"].as_str().context("draft id")?.to_owned();
        let ask = json!({"version": draft["version"], "certificate": doctor_card.signature_certificate()});
        let signing = ok(client.post(&format!("/v1/drafts/{id}/signed-attributes"), &ask, Some(&d)).await?)?;
        ready.push_back((id, doctor_card.signed_confirm(&signing)?));
    }
    let warmup: VecDeque<_> = ready.drain(..WARMUP).collect();
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(world.connect(&creds).await?);
    }
    let clients = confirm_all(clients, batches(warmup, mode.batch), &d).await?;
    let before = world.gw.store.count_records().await?;
    let tsa_before = world.tsa.as_ref().map_or(0.0, |t| t.busy_seconds());
    // A mark for profilers attaching to this process (perf record -p).
    eprintln!(
        "measuring confirms on {}",
        if world.gw.store.backend() == hpki_gateway::store::Backend::Sqlite { "SQLite" } else { "PostgreSQL" }
    );
    let started = Instant::now();
    confirm_all(clients, batches(ready, mode.batch), &d).await?;
    let elapsed = started.elapsed().as_secs_f64();
    // Check what was measured: every confirm made exactly one record.
    let made = world.gw.store.count_records().await? - before;
    anyhow::ensure!(made == drafts as i64, "{made} records for {drafts} confirms");
    anyhow::ensure!(world.chain_verifies().await, "the audit chain does not verify");
    let tsa_share = world.tsa.as_ref().map(|t| (t.busy_seconds() - tsa_before) / (elapsed * CLIENTS as f64));
    Ok(Round { rate: drafts as f64 / elapsed, tsa_share })
}

/// The drafts in requests of `size`: a confirm body alone, or a batch body.
fn batches(queue: VecDeque<(String, Value)>, size: usize) -> VecDeque<(String, Value)> {
    if size == 1 {
        return queue;
    }
    let all: Vec<(String, Value)> = queue.into();
    all.chunks(size)
        .map(|chunk| {
            let items: Vec<Value> = chunk
                .iter()
                .map(|(id, b)| {
                    json!({"draft": id, "version": b["version"], "signed_attributes": b["signed_attributes"], "signature": b["signature"]})
                })
                .collect();
            (String::new(), json!({"certificate": chunk[0].1["certificate"], "items": items}))
        })
        .collect()
}

/// One round on a fresh database of the machine's PostgreSQL, dropped
/// afterwards whatever the outcome.
async fn postgres_round(drafts: usize) -> Result<f64> {
    let db = PgDatabase::create().await?;
    let rate = confirm_round(Some(db.url.clone()), drafts).await;
    db.drop_db().await;
    rate
}

/// Confirms everything in `queue` over `clients` concurrently (each
/// connection takes the next draft when it is free); hands the connections
/// back.
async fn confirm_all(
    clients: Vec<TerminalClient>,
    queue: VecDeque<(String, Value)>,
    session: &str,
) -> Result<Vec<TerminalClient>> {
    let queue = Arc::new(Mutex::new(queue));
    let mut tasks = Vec::new();
    for mut c in clients {
        let (queue, d) = (queue.clone(), session.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop_front();
                let Some((id, body)) = next else { return Ok::<_, anyhow::Error>(c) };
                if id.is_empty() {
                    let answer = ok(c.post("/v1/confirm-batch", &body, Some(&d)).await?)?;
                    let results = answer["results"].as_array().context("batch results")?;
                    anyhow::ensure!(results.iter().all(|r| r["record"].is_object()), "a batch item failed: {answer}");
                } else {
                    ok(c.post(&format!("/v1/drafts/{id}/confirm"), &body, Some(&d)).await?)?;
                }
            }
        }));
    }
    let mut back = Vec::with_capacity(tasks.len());
    for t in tasks {
        back.push(t.await??);
    }
    Ok(back)
}

fn pgbench() -> Result<PathBuf> {
    for p in ["/usr/bin/pgbench", "/usr/lib/postgresql/15/bin/pgbench"] {
        if std::path::Path::new(p).exists() {
            return Ok(p.into());
        }
    }
    bail!("pgbench not found (it comes with the postgresql packages)")
}

/// pgbench's built-in TPC-B-like script on a fresh database: transactions
/// per second (without connection time).
async fn pgbench_round() -> Result<f64> {
    let db = PgDatabase::create().await?;
    let result = (|| {
        let init = Command::new(pgbench()?).args(["-i", "-q", "-s", &CLIENTS.to_string(), &db.url]).output()?;
        anyhow::ensure!(init.status.success(), "pgbench -i: {}", String::from_utf8_lossy(&init.stderr));
        let run = Command::new(pgbench()?)
            .args([
                "-c",
                &CLIENTS.to_string(),
                "-j",
                "2",
                "-M",
                "prepared",
                "-T",
                &PGBENCH_SECONDS.to_string(),
                &db.url,
            ])
            .output()?;
        let out = String::from_utf8_lossy(&run.stdout);
        anyhow::ensure!(run.status.success(), "pgbench: {out}{}", String::from_utf8_lossy(&run.stderr));
        let tps = out
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("no tps in pgbench output: {out}"))?;
        let failed = out.lines().any(|l| l.starts_with("number of failed transactions: ") && !l.contains(": 0 "));
        anyhow::ensure!(!failed, "pgbench had failed transactions: {out}");
        Ok(tps)
    })();
    db.drop_db().await;
    result
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let drafts = drafts()?;
    if let Ok(store) = std::env::var("CONFIRMS_PROFILE") {
        let rate = match store.as_str() {
            "sqlite" => confirm_round(None, drafts).await?,
            "postgres" => postgres_round(drafts).await?,
            "sqlite-tsa" => round(None, drafts, Mode { tsa: true, batch: 1 }).await?.rate,
            "sqlite-tsa-batch" => round(None, drafts, Mode { tsa: true, batch: BATCH }).await?.rate,
            other => bail!("CONFIRMS_PROFILE={other:?}: say sqlite, postgres, sqlite-tsa or sqlite-tsa-batch"),
        };
        println!("{store}: {rate:.0} confirms/s ({drafts} drafts)");
        return Ok(());
    }
    let (mut sqlite, mut postgres, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    let (mut stamped, mut stamped_share, mut batched) = (Vec::new(), Vec::new(), Vec::new());
    for n in 1..=ROUNDS {
        let s = confirm_round(None, drafts).await?;
        let p = postgres_round(drafts).await?;
        let r = pgbench_round().await?;
        let t = round(None, TSA_DRAFTS, Mode { tsa: true, batch: 1 }).await?;
        let b = round(None, TSA_DRAFTS, Mode { tsa: true, batch: BATCH }).await?;
        let share = t.tsa_share.unwrap_or_default();
        println!(
            "round {n}: SQLite {s:.0} confirms/s, PostgreSQL {p:.0} confirms/s, pgbench TPC-B {r:.0} tps, \
             SQLite time-stamped {:.0} confirms/s (TSA {:.0} %), in batches of {BATCH} {:.0} confirms/s",
            t.rate,
            share * 100.0,
            b.rate
        );
        sqlite.push(s);
        postgres.push(p);
        reference.push(r);
        stamped.push(t.rate);
        stamped_share.push(share);
        batched.push(b.rate);
    }
    let (s, p, r) = (median(sqlite), median(postgres), median(reference));
    let (t, share, b) = (median(stamped), median(stamped_share), median(batched));
    println!(
        "confirms ({drafts} per round, {CLIENTS} keep-alive mTLS connections) vs pgbench (-c {CLIENTS} -j 2 -M prepared -T {PGBENCH_SECONDS}, scale {CLIENTS}), same PostgreSQL server, medians of {ROUNDS} rounds:"
    );
    println!("  SQLite      {s:>8.0} confirms/s   ({:.2} of pgbench)", s / r);
    println!("  PostgreSQL  {p:>8.0} confirms/s   ({:.2} of pgbench)   goal ≥ 0.50", p / r);
    println!("  pgbench     {r:>8.0} transactions/s");
    println!(
        "time-stamped (test TSA: openssl ts -reply per token, two tokens per confirm; {TSA_DRAFTS} drafts per round, SQLite):"
    );
    println!(
        "  one by one  {t:>8.0} confirms/s   ({:.2} of untimestamped SQLite)   goal ≥ 0.50; TSA share {:.0} %",
        t / s,
        share * 100.0
    );
    println!("  batches of {BATCH} {b:>6.0} confirms/s   ({:.2} of untimestamped SQLite)", b / s);
    Ok(())
}
