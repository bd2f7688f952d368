//! Emergency operation (FLOW-7) end to end: break-glass access by a
//! designated doctor with a real card session over mutual TLS — refusals,
//! the one patient's records from another institution without encounter
//! or consent, the alert, the expiry, the monthly report's review section
//! and the auditor's review through the CLI — and the operating modes set
//! by the CLI (another process) and honoured by the gateway from its next
//! request, on SQLite and on a real PostgreSQL server.

use std::time::Duration;

use anyhow::{Context, Result};
use hpki_e2e::{
    World, WorldOptions, gateway_cli, gateway_cli_raw, insert_card, ok, on_postgres, private_pcscd, refused, session,
};
use hpki_profile::Profession;
use serde_json::{Value, json};

const CLINIC: &str = "Kanazawa Clinic";
const OTHER: &str = "Noto Hospital";

/// The month (Japan time) of an RFC 3339 UTC instant, as `--month` takes it.
fn month_of(rfc3339: &str) -> Result<String> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)?
        + time::Duration::hours(9);
    Ok(format!("{:04}-{:02}", t.year(), u8::from(t.month())))
}

fn admin(world: &World, args: &[&str]) -> Result<String> {
    gateway_cli(&world.config_path(), args)
}

/// The monthly report's break-glass review row of `id`.
fn review_row(world: &World, month: &str, id: &str) -> Result<Value> {
    let m: Value = serde_json::from_str(&admin(world, &["report", "monthly", "--month", month])?)?;
    m["break_glass_review"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id).cloned())
        .with_context(|| format!("access {id} not in the review: {}", m["break_glass_review"]))
}

async fn break_glass(world: &mut World) -> Result<()> {
    let here = world.terminal(CLINIC, "er-1")?;
    let there = world.terminal(OTHER, "ward-1")?;
    let (noto_image, _noto_doctor) = world.person_card(Profession::Doctor, "710001", OTHER).await?;
    let (er_image, er_doctor) = world.person_card(Profession::Doctor, "710002", CLINIC).await?;
    world.register(&format!("{CLINIC}/A-9"), "assistant", CLINIC).await?;
    let pcscd = private_pcscd()?;
    let mut noto = insert_card(&pcscd, 0, &noto_image)?;
    let mut er = insert_card(&pcscd, 1, &er_image)?;

    // A patient of Noto Hospital, with a note there; no consent to share it.
    let mut at_noto = world.connect(&there).await?;
    let n = session(&mut at_noto, &mut noto.card).await?;
    let p =
        ok(at_noto.post("/v1/patients", &json!({"name": "Kita Jiro", "birth_date": "1941-02-03"}), Some(&n)).await?);
    let pid = p["id"].as_str().context("patient id")?.to_owned();
    let enc = ok(at_noto.post("/v1/encounters", &json!({"patient": pid}), Some(&n)).await?);
    let note = json!({"allergy": "penicillin", "text": "ペニシリンで発疹"});
    ok(at_noto.post("/v1/notes", &json!({"encounter": enc["id"], "content": note}), Some(&n)).await?);

    // The emergency room doctor: no encounter here, no consent.
    let mut er_client = world.connect(&here).await?;
    let d = session(&mut er_client, &mut er.card).await?;
    refused(
        world,
        er_client.get(&format!("/v1/patients/{pid}/records"), Some(&d)).await?,
        "records.read",
        "no_open_encounter",
    )
    .await;
    // Off by default: nobody is designated.
    let ask = json!({"patient": pid, "reason": "emergency_treatment", "detail": "unconscious on arrival"});
    refused(
        world,
        er_client.post("/v1/break-glass", &ask, Some(&d)).await?,
        "break_glass.start",
        "break_glass_not_designated",
    )
    .await;

    // IT staff designate the doctor; not an assistant (the role table).
    admin(world, &["admin", "break-glass", "grant", "--person", &er_doctor])?;
    let (code, _, err) = gateway_cli_raw(
        &world.config_path(),
        &["admin", "break-glass", "grant", "--person", &format!("{CLINIC}/A-9")],
    )?;
    assert!(code != 0 && err.contains("may not break the glass"), "{code} {err}");
    let (code, _, err) =
        gateway_cli_raw(&world.config_path(), &["admin", "break-glass", "grant", "--person", &er_doctor])?;
    assert!(code != 0 && err.contains("designated already"), "{code} {err}");
    assert_eq!(world.last_audit("admin.break_glass.grant").await.event.outcome, "refused");

    // Each refusal of a request is specific.
    let no_reason = json!({"patient": pid, "detail": "unconscious"});
    refused(
        world,
        er_client.post("/v1/break-glass", &no_reason, Some(&d)).await?,
        "break_glass.start",
        "break_glass_reason_required",
    )
    .await;
    let no_text = json!({"patient": pid, "reason": "disaster"});
    refused(
        world,
        er_client.post("/v1/break-glass", &no_text, Some(&d)).await?,
        "break_glass.start",
        "break_glass_reason_required",
    )
    .await;
    let bad_reason = json!({"patient": pid, "reason": "curiosity", "detail": "x"});
    refused(
        world,
        er_client.post("/v1/break-glass", &bad_reason, Some(&d)).await?,
        "break_glass.start",
        "invalid_break_glass_reason",
    )
    .await;
    let nobody = json!({"patient": "PXXXXXXXXXX", "reason": "disaster", "detail": "flood"});
    refused(world, er_client.post("/v1/break-glass", &nobody, Some(&d)).await?, "break_glass.start", "unknown_patient")
        .await;

    // Granted: that patient's records, every institution's, for a while.
    let access = ok(er_client.post("/v1/break-glass", &ask, Some(&d)).await?);
    let id = access["id"].as_str().context("access id")?.to_owned();
    assert_eq!((access["patient"].as_str(), access["active"].as_bool()), (Some(pid.as_str()), Some(true)), "{access}");
    let start = world.last_audit("break_glass.start").await;
    assert_eq!((start.event.outcome.as_str(), start.event.actor.as_str()), ("ok", er_doctor.as_str()));
    assert_eq!(start.event.object, format!("break_glass:{id} patient:{pid}"));
    let alert = world.last_audit("alert.raised").await;
    assert!(alert.event.object.starts_with("rule:break_glass"), "{alert:?}");
    assert!(alert.event.reason.contains(&id), "{alert:?}");
    let status = ok(er_client.get("/v1/status", Some(&d)).await?);
    assert_eq!(status["mode"], "normal");
    assert_eq!(status["break_glass"][0]["id"], id.as_str(), "{status}");

    let records = ok(er_client.get(&format!("/v1/break-glass/{id}/records"), Some(&d)).await?);
    let list = records["records"].as_array().context("records")?;
    assert_eq!(list.len(), 1, "{records}");
    assert_eq!((list[0]["institution"].as_str(), &list[0]["content"]), (Some(OTHER), &note));
    let read = world.last_audit("break_glass.read").await;
    assert_eq!(
        (read.event.outcome.as_str(), read.event.object.clone()),
        ("ok", format!("break_glass:{id} patient:{pid}"))
    );
    // And nothing else: the usual read still needs an encounter.
    refused(
        world,
        er_client.get(&format!("/v1/patients/{pid}/records"), Some(&d)).await?,
        "records.read",
        "no_open_encounter",
    )
    .await;
    // Nobody else can use it: the Noto doctor (whose role may break the
    // glass) is told there is no such access of theirs.
    refused(
        world,
        at_noto.get(&format!("/v1/break-glass/{id}/records"), Some(&n)).await?,
        "break_glass.read",
        "unknown_break_glass",
    )
    .await;

    // The month's review lists it, not reviewed; it cannot be reviewed
    // while in force.
    let month = month_of(access["started_at"].as_str().context("started_at")?)?;
    let row = review_row(world, &month, &id)?;
    assert_eq!(
        (row["reads"].as_u64(), row["reviewed_at"].is_null(), row["over_at"].is_null()),
        (Some(1), true, true),
        "{row}"
    );
    let (code, _, err) = gateway_cli_raw(&world.config_path(), &["admin", "break-glass", "review", "--id", &id])?;
    assert!(code != 0 && err.contains("still in force"), "{code} {err}");

    // Past its expiry every read is refused, before and after the sweep
    // ends it in the store and the log.
    world.clock.advance_secs(61);
    refused(
        world,
        er_client.get(&format!("/v1/break-glass/{id}/records"), Some(&d)).await?,
        "break_glass.read",
        "break_glass_expired",
    )
    .await;
    assert_eq!(hpki_gateway::ops::break_glass::sweep(&world.gw).await, 1);
    assert_eq!(hpki_gateway::ops::break_glass::sweep(&world.gw).await, 0, "ended once");
    let expired = world.last_audit("break_glass.expire").await;
    assert_eq!(
        (expired.event.outcome.as_str(), expired.event.object.clone()),
        ("ok", format!("break_glass:{id} patient:{pid}"))
    );
    let status = ok(er_client.get("/v1/status", Some(&d)).await?);
    assert_eq!(status["break_glass"], json!([]), "{status}");

    // The auditor's review, once; the report then shows who reviewed it.
    admin(
        world,
        &[
            "admin",
            "break-glass",
            "review",
            "--id",
            &id,
            "--note",
            "justified: anaphylaxis risk",
            "--operator",
            "auditor-ito",
        ],
    )?;
    let (code, _, err) = gateway_cli_raw(&world.config_path(), &["admin", "break-glass", "review", "--id", &id])?;
    assert!(code != 0 && err.contains("reviewed already"), "{code} {err}");
    let row = review_row(world, &month, &id)?;
    assert_eq!(
        (row["reviewed_by"].as_str(), row["end"].as_str()),
        (Some("admin:auditor-ito"), Some("expired")),
        "{row}"
    );
    let html = admin(world, &["report", "monthly", "--month", &month, "--format", "html"])?;
    assert!(html.contains("Break-glass review") && html.contains(&id), "the HTML report shows the review");

    // A second access ended by the doctor: then refused as over.
    let second = ok(er_client.post("/v1/break-glass", &ask, Some(&d)).await?);
    let id2 = second["id"].as_str().context("id")?.to_owned();
    let ended = ok(er_client.post(&format!("/v1/break-glass/{id2}/end"), &json!({}), Some(&d)).await?);
    assert_eq!(ended["active"], false);
    let gone = er_client.get(&format!("/v1/break-glass/{id2}/records"), Some(&d)).await?;
    assert!(gone.1["message"].as_str().is_some_and(|m| m.contains("was ended")), "{}", gone.1);
    refused(world, gone, "break_glass.read", "break_glass_expired").await;
    refused(
        world,
        er_client.get("/v1/break-glass/bg_nothing/records", Some(&d)).await?,
        "break_glass.read",
        "unknown_break_glass",
    )
    .await;

    // Revoked: no new access.
    admin(world, &["admin", "break-glass", "revoke", "--person", &er_doctor])?;
    refused(
        world,
        er_client.post("/v1/break-glass", &ask, Some(&d)).await?,
        "break_glass.start",
        "break_glass_not_designated",
    )
    .await;
    assert!(world.outbox_once_cleaned().await?.is_empty(), "every change has its entry");
    assert!(world.chain_verifies().await);
    Ok(())
}

async fn modes(world: &mut World) -> Result<()> {
    let here = world.terminal(CLINIC, "desk-2")?;
    let (image, doctor) = world.person_card(Profession::Doctor, "720001", CLINIC).await?;
    let pcscd = private_pcscd()?;
    let mut slot = insert_card(&pcscd, 0, &image)?;
    let mut client = world.connect(&here).await?;
    let d = session(&mut client, &mut slot.card).await?;
    let p =
        ok(client.post("/v1/patients", &json!({"name": "Minami Yuki", "birth_date": "1990-07-07"}), Some(&d)).await?);
    let pid = p["id"].as_str().context("patient id")?.to_owned();
    ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&d)).await?);
    let records = format!("/v1/patients/{pid}/records");
    let new_patient = json!({"name": "Higashi Ken", "birth_date": "1985-01-01"});

    // Bad input changes nothing.
    let (code, _, err) = gateway_cli_raw(&world.config_path(), &["admin", "mode", "readonly", "--reason", "x"])?;
    assert!(code != 0 && err.contains("read-only"), "{code} {err}");
    let (code, _, err) = gateway_cli_raw(&world.config_path(), &["admin", "mode", "blocked", "--reason", " "])?;
    assert!(code != 0 && err.contains("--reason"), "{code} {err}");
    assert_eq!(world.last_audit("admin.mode").await.event.outcome, "refused");
    ok(client.post("/v1/patients", &new_patient, Some(&d)).await?);

    // Read-only: reads served, writes refused, from the next request on.
    admin(world, &["admin", "mode", "read-only", "--reason", "storage maintenance"])?;
    ok(client.get(&records, Some(&d)).await?);
    refused(world, client.post("/v1/patients", &new_patient, Some(&d)).await?, "patient.register", "read_only_mode")
        .await;
    refused(
        world,
        client.post("/v1/notes", &json!({"encounter": "x", "content": {"a": 1}}), Some(&d)).await?,
        "note.add",
        "read_only_mode",
    )
    .await;
    let status = ok(client.get("/v1/status", Some(&d)).await?);
    assert_eq!(
        (status["mode"].as_str(), status["mode_reason"].as_str()),
        (Some("read-only"), Some("storage maintenance"))
    );
    let (code, body) = ops_get(world, "/readyz").await?;
    assert_eq!((code, body.as_str()), (200, "ready\nmode: read-only (storage maintenance)\n"));
    let (_, metrics) = ops_get(world, "/metrics").await?;
    assert!(metrics.contains("hpki_operating_mode{mode=\"read-only\"} 1"), "{metrics}");
    assert!(metrics.contains("hpki_operating_mode{mode=\"normal\"} 0"), "{metrics}");

    // Blocked: sign-in and break-glass only.
    admin(world, &["admin", "mode", "blocked", "--reason", "ransomware suspected"])?;
    refused(world, client.get(&records, Some(&d)).await?, "records.read", "blocked_mode").await;
    refused(world, client.post("/v1/patients", &new_patient, Some(&d)).await?, "patient.register", "blocked_mode")
        .await;
    ok(client.get("/v1/auth/whoami", Some(&d)).await?);
    let d2 = session(&mut client, &mut slot.card).await?;
    admin(world, &["admin", "break-glass", "grant", "--person", &doctor])?;
    let access = ok(client
        .post("/v1/break-glass", &json!({"patient": pid, "reason": "disaster", "detail": "systems down"}), Some(&d2))
        .await?);
    ok(client.get(&format!("/v1/break-glass/{}/records", access["id"].as_str().context("id")?), Some(&d2)).await?);

    // Back to normal.
    admin(world, &["admin", "mode", "normal", "--reason", "incident closed"])?;
    ok(client.post("/v1/patients", &new_patient, Some(&d2)).await?);
    let (_, body) = ops_get(world, "/readyz").await?;
    assert_eq!(body, "ready\nmode: normal\n");
    let changes: Vec<_> = world.audit().await.into_iter().filter(|r| r.event.action == "admin.mode").collect();
    let objects: Vec<(&str, &str)> =
        changes.iter().map(|r| (r.event.object.as_str(), r.event.outcome.as_str())).collect();
    assert_eq!(
        objects,
        [("mode:blocked", "refused"), ("mode:read-only", "ok"), ("mode:blocked", "ok"), ("mode:normal", "ok")],
        "every change audited"
    );
    assert!(world.outbox_once_cleaned().await?.is_empty());
    Ok(())
}

/// GET on the ops listener: status and body.
async fn ops_get(world: &World, path: &str) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(world.ops_addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: ops\r\nconnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await??;
    let status = out.get(9..12).and_then(|s| s.parse().ok()).context("status")?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

fn short_break_glass() -> WorldOptions {
    WorldOptions { break_glass_seconds: 60, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_flow_7_on_sqlite() -> Result<()> {
    let mut world = World::start(short_break_glass()).await?;
    break_glass(&mut world).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_flow_7_on_postgres() -> Result<()> {
    on_postgres(short_break_glass(), async |world| break_glass(world).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operating_modes_flow_7_on_sqlite() -> Result<()> {
    let mut world = World::start(WorldOptions::default()).await?;
    modes(&mut world).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operating_modes_flow_7_on_postgres() -> Result<()> {
    on_postgres(WorldOptions::default(), async |world| modes(world).await).await
}
