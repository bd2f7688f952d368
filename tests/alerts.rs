//! LOG-4, LOG-6: each abnormal-access rule raises an alert (audit entry,
//! metric, webhook) and, where configured, cuts the terminal or the person
//! off at once; IT staff lift it with `hpki-gateway admin`. Logins go
//! through real cards in pcscd.

use std::time::Duration;

use anyhow::{Context, Result};
use hpki_card::PcscContext;
use hpki_e2e::{World, WorldOptions, gateway_cli, session};
use hpki_profile::Profession;
use serde_json::{Value, json};
use testbed::CardProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLINIC: &str = "Kanazawa Clinic";
const HOSPITAL: &str = "Noto Hospital";

/// A webhook receiver on a free port: the JSON bodies it was sent.
async fn webhook() -> Result<(String, tokio::sync::mpsc::Receiver<Value>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/alerts", listener.local_addr()?);
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = s.read(&mut chunk).await else { break None };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body[..len].to_owned());
                    }
                }
            };
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            if let Some(b) = body.and_then(|b| serde_json::from_str(&b).ok()) {
                let _ = tx.send(b).await;
            }
        }
    });
    Ok((url, rx))
}

async fn world(rules: &str, hook: &str) -> Result<World> {
    World::start(WorldOptions { alerts: Some(format!("webhook = {hook:?}\n{rules}")), ..Default::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_refused_logins_from_one_terminal_suspend_it_until_it_is_lifted() -> Result<()> {
    let (hook, mut alerts) = webhook().await?;
    let mut world = world("[refused_logins]\nmax = 3\nwindow_seconds = 300\nsuspend_terminal = true\n", &hook).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    world.ensure_institution(CLINIC).await?;
    let mut client = world.connect(&creds).await?;

    // Two refusals are not yet abnormal.
    for _ in 0..2 {
        let (status, _) = client.post("/v1/auth/login", &json!({"challenge_id": "x"}), None).await?;
        assert_eq!(status, 400);
    }
    let (status, _) = client.post("/v1/auth/challenge", &json!({}), None).await?;
    assert_eq!(status, 200, "suspended too early");
    // The third is: the terminal is cut off at once.
    let (status, _) = client.post("/v1/auth/login", &json!({"challenge_id": "x"}), None).await?;
    assert_eq!(status, 400);
    let (status, body) = client.post("/v1/auth/challenge", &json!({}), None).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("terminal_suspended")), "{body}");

    let audit = world.audit().await;
    let alert = audit.iter().find(|e| e.event.action == "alert.raised").context("alert audited")?;
    assert!(alert.event.object.starts_with("rule:refused_logins"), "{:?}", alert.event);
    assert_eq!(alert.event.terminal, format!("{CLINIC}/desk-1"));
    let cut = audit.iter().find(|e| e.event.action == "terminal.suspend").context("suspension audited")?;
    assert_eq!((cut.event.actor.as_str(), cut.event.outcome.as_str()), ("system:alerts", "ok"));
    assert_eq!(world.gw.metrics.alerts_refused_logins.get(), 1);
    let posted = tokio::time::timeout(Duration::from_secs(5), alerts.recv()).await?.context("webhook")?;
    assert_eq!(posted["rule"], "refused_logins");
    assert_eq!(posted["cut_off"], json!({"kind": "terminal", "terminal": format!("{CLINIC}/desk-1")}));

    // IT staff lift it; the terminal works again.
    gateway_cli(
        &world.config_path(),
        &["admin", "suspend-terminal", "--institution", CLINIC, "--name", "desk-1", "--lift"],
    )?;
    let (status, body) = client.post("/v1/auth/challenge", &json!({}), None).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_card_at_two_institutions_within_minutes_deactivates_the_person_until_lifted() -> Result<()> {
    let (hook, mut alerts) = webhook().await?;
    let mut world = world("[institution_hopping]\nwindow_seconds = 600\n", &hook).await?;
    let clinic = world.terminal(CLINIC, "desk-1")?;
    let hospital = world.terminal(HOSPITAL, "ward-1")?;
    world.ensure_institution(HOSPITAL).await?;
    let (image, doctor) = world.person_card(Profession::Doctor, "410001", CLINIC).await?;
    let pcscd = hpki_e2e::private_pcscd()?;
    let _card = CardProcess::start(&pcscd, 0, &image)?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(&pcscd.reader(0), Duration::from_secs(5))?;
    let mut card = ctx.connect(&pcscd.reader(0))?;

    let mut at_clinic = world.connect(&clinic).await?;
    session(&mut at_clinic, &mut card).await?;
    // Twenty minutes later at the hospital: fine.
    world.clock.advance_secs(20 * 60);
    let mut at_hospital = world.connect(&hospital).await?;
    session(&mut at_hospital, &mut card).await?;
    assert!(world.audit().await.iter().all(|e| e.event.action != "alert.raised"), "alert outside the window");
    // Back at the clinic two minutes later: abnormal; the person is cut off.
    world.clock.advance_secs(120);
    let (status, body) = hpki_e2e::login(&mut at_clinic, &mut card).await?;
    assert_eq!(status, 200, "the login itself was valid: {body}");
    let token = body["session"].as_str().context("session")?.to_owned();
    let (status, body) = at_clinic.get("/v1/auth/whoami", Some(&token)).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("person_deactivated")), "the session still works: {body}");

    let audit = world.audit().await;
    let alert = audit.iter().find(|e| e.event.action == "alert.raised").context("alert audited")?;
    assert_eq!(alert.event.object, format!("rule:institution_hopping person:{doctor}"));
    assert!(alert.event.reason.contains(HOSPITAL), "{:?}", alert.event);
    assert!(audit.iter().any(|e| e.event.action == "person.deactivate" && e.event.object == doctor));
    let posted = tokio::time::timeout(Duration::from_secs(5), alerts.recv()).await?.context("webhook")?;
    assert_eq!(posted["rule"], "institution_hopping");
    assert_eq!(posted["cut_off"]["person"], doctor.as_str());
    let (status, body) = hpki_e2e::login(&mut at_clinic, &mut card).await?;
    assert_eq!((status, body["error"].as_str()), (403, Some("person_deactivated")), "{body}");

    // IT staff lift it after checking with the doctor.
    gateway_cli(&world.config_path(), &["admin", "activate", "--person", &doctor])?;
    world.clock.advance_secs(3600);
    session(&mut at_clinic, &mut card).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_outside_opening_hours_raises_an_alert_and_one_inside_does_not() -> Result<()> {
    let (hook, mut alerts) = webhook().await?;
    let mut world =
        world("[opening_hours]\nopen = \"07:00\"\nclose = \"21:00\"\nutc_offset_minutes = 540\n", &hook).await?;
    let clinic = world.terminal(CLINIC, "desk-1")?;
    let image = world.card(Profession::Nurse, "N-5001", CLINIC).await?;
    let pcscd = hpki_e2e::private_pcscd()?;
    let _card = CardProcess::start(&pcscd, 0, &image)?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(&pcscd.reader(0), Duration::from_secs(5))?;
    let mut card = ctx.connect(&pcscd.reader(0))?;
    let mut client = world.connect(&clinic).await?;

    // To the next 10:00 in Japan, then on to 03:00.
    let jst_minute = |world: &World| {
        use hpki_gateway::clock::Clock;
        (world.clock.now_ms().div_euclid(1000) + 9 * 3600).rem_euclid(86_400) / 60
    };
    let to = |from: i64, target: i64| ((target - from).rem_euclid(1440)) * 60;
    world.clock.advance_secs(to(jst_minute(&world), 10 * 60));
    session(&mut client, &mut card).await?;
    assert!(world.audit().await.iter().all(|e| e.event.action != "alert.raised"), "alert at 10:00");
    world.clock.advance_secs(to(jst_minute(&world), 3 * 60));
    session(&mut client, &mut card).await?;

    let alert = world.last_audit("alert.raised").await;
    assert!(alert.event.object.starts_with("rule:outside_hours"), "{:?}", alert.event);
    assert!(alert.event.reason.starts_with("login at 03:0"), "{:?}", alert.event);
    // Alert only (the rule does not suspend unless told to).
    assert!(world.audit().await.iter().all(|e| e.event.action != "person.deactivate"));
    let posted = tokio::time::timeout(Duration::from_secs(5), alerts.recv()).await?.context("webhook")?;
    assert_eq!((posted["rule"].as_str(), posted["cut_off"].is_null()), (Some("outside_hours"), true));
    assert_eq!(world.gw.metrics.alerts_outside_hours.get(), 1);
    Ok(())
}

#[tokio::test]
async fn bad_alert_rules_are_refused_with_the_reason() -> Result<()> {
    let cases = [
        ("[opening_hours]\nopen = \"7:00\"\nclose = \"21:00\"\n", "HH:MM"),
        ("[refused_logins]\nmax = 0\n", "max must be at least 1"),
        ("webhook = \"https://relay.example\"\n", "only http://"),
        ("[institution_hopping]\nwindow = 5\n", "unknown field"),
    ];
    for (rules, says) in cases {
        let e = World::start(WorldOptions { alerts: Some(rules.to_owned()), ..Default::default() })
            .await
            .err()
            .with_context(|| format!("{rules:?} accepted"))?;
        assert!(format!("{e:#}").contains(says), "{rules:?}: {e:#}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refused_logins_alert_fires_when_refusals_step_over_the_threshold_and_once_per_window() -> Result<()> {
    let (hook, _alerts) = webhook().await?;
    let mut world = world("[refused_logins]\nmax = 3\nwindow_seconds = 300\nsuspend_terminal = false\n", &hook).await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    world.ensure_institution(CLINIC).await?;
    let terminal = format!("{CLINIC}/desk-1");
    // Refusals answered together: the count goes from 2 past 3 before the
    // rule looks (entries appended as the audit layer appends them).
    for _ in 0..3 {
        let e = hpki_gateway::audit::AuditEvent {
            terminal: terminal.clone(),
            institution: CLINIC.into(),
            reason: "malformed_json".into(),
            ..hpki_gateway::audit::AuditEvent::new(
                hpki_gateway::audit::Action::AuthLogin,
                hpki_gateway::audit::Outcome::Refused,
            )
        };
        world.gw.audit.append(e, world.gw.clock.now_ms()).await.map_err(anyhow::Error::msg)?;
    }
    let mut client = world.connect(&creds).await?;
    for _ in 0..3 {
        let (status, _) = client.post("/v1/auth/login", &json!({"challenge_id": "x"}), None).await?;
        assert_eq!(status, 400);
    }
    let alerts = world.audit().await.into_iter().filter(|e| e.event.action == "alert.raised").count();
    assert_eq!(alerts, 1, "one alert for 6 refusals over a threshold of 3 within the window");
    assert_eq!(world.gw.metrics.alerts_refused_logins.get(), 1);
    Ok(())
}
