//! LOG-3, LOG-7, AUTH-9: the monthly review and the configuration report,
//! built from what a real card login, a refused login, an alert and a
//! maintenance operator's work left in the audit log.

use std::time::Duration;

use anyhow::{Context, Result};
use hpki_card::PcscContext;
use hpki_e2e::{World, WorldOptions, gateway_cli, gateway_cli_raw, session};
use hpki_profile::Profession;
use serde_json::{Value, json};
use testbed::CardProcess;

const CLINIC: &str = "Kanazawa Clinic";

/// This month in Japan, as `--month` takes it.
fn this_month() -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::hours(9);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

fn report(world: &World, args: &[&str]) -> Result<String> {
    gateway_cli(&world.config_path(), args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_review_shows_logins_refusals_alerts_maintenance_expiry_and_crls() -> Result<()> {
    let mut world = World::start(WorldOptions {
        alerts: Some("[refused_logins]\nmax = 2\nsuspend_terminal = false\n".into()),
        ..Default::default()
    })
    .await?;
    let creds = world.terminal(CLINIC, "desk-1")?;
    let (image, doctor) = world.person_card(Profession::Doctor, "520001", CLINIC).await?;
    let pcscd = hpki_e2e::private_pcscd()?;
    let _card = CardProcess::start(&pcscd, 0, &image)?;
    let ctx = PcscContext::establish()?;
    ctx.wait_for_card(&pcscd.reader(0), Duration::from_secs(5))?;
    let mut card = ctx.connect(&pcscd.reader(0))?;
    let mut client = world.connect(&creds).await?;
    session(&mut client, &mut card).await?;
    for _ in 0..2 {
        let (status, _) = client.post("/v1/auth/login", &json!({"challenge_id": "x"}), None).await?;
        assert_eq!(status, 400);
    }
    // Maintenance staff work under their own names (AUTH-9).
    gateway_cli(
        &world.config_path(),
        &["admin", "add-institution", "--name", "Noto Hospital", "--operator", "tanaka-maint"],
    )?;
    let (code, ..) = gateway_cli_raw(
        &world.config_path(),
        &["admin", "link", "--assistant", "nobody", "--doctor", &doctor, "--operator", "tanaka-maint"],
    )?;
    assert_eq!(code, 2);

    let month = this_month();
    let m: Value = serde_json::from_str(&report(&world, &["report", "monthly", "--month", &month])?)?;
    assert_eq!(m["logins_ok"], 1, "{m}");
    assert_eq!(m["logins_refused"], 2);
    assert_eq!(m["logins_by_institution"], json!([{"key": CLINIC, "count": 1}]));
    assert_eq!(m["logins_by_person"], json!([{"key": doctor, "count": 1}]));
    let reasons = m["refusals_by_reason"].as_array().context("reasons")?;
    assert!(reasons.iter().any(|r| r["key"] == "malformed_json (auth.login)" && r["count"] == 2), "{reasons:?}");
    let admin = m["admin_actions"].as_array().context("admin")?;
    assert!(admin.iter().any(|a| a["actor"] == "admin:tanaka-maint" && a["action"] == "admin.institution.add"));
    let day = m["maintenance_by_day"].as_array().context("days")?;
    let tanaka = day.iter().find(|d| d["operator"] == "tanaka-maint").context("maintenance operator missing")?;
    assert_eq!((tanaka["actions"].as_u64(), tanaka["refused"].as_u64()), (Some(2), Some(1)), "{tanaka}");
    let alerts = m["alerts"].as_array().context("alerts")?;
    assert!(alerts.iter().any(|a| a["object"].as_str().is_some_and(|o| o.starts_with("rule:refused_logins"))));
    // The terminal seen on this connection expires in 30 days.
    let near = m["terminals_near_expiry"].as_array().context("expiry")?;
    assert_eq!(near.len(), 1, "{near:?}");
    assert_eq!((near[0]["institution"].as_str(), near[0]["name"].as_str()), (Some(CLINIC), Some("desk-1")));
    assert!(m["crls"].as_array().context("crls")?.iter().all(|c| c["fresh"] == true), "{}", m["crls"]);

    // The HTML version: charts as inline SVG, nothing loaded from elsewhere.
    let html = report(&world, &["report", "monthly", "--month", &month, "--format", "html"])?;
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg") && html.contains(CLINIC));
    assert!(!html.contains("src=") && !html.contains("href=") && !html.contains("http"), "external assets");

    // Another month is empty; a malformed one is refused.
    let empty: Value = serde_json::from_str(&report(&world, &["report", "monthly", "--month", "2020-01"])?)?;
    assert_eq!((empty["logins_ok"].as_u64(), empty["audit_entries"].as_u64()), (Some(0), Some(0)));
    let e = report(&world, &["report", "monthly", "--month", "2026-13"]).err().context("2026-13 accepted")?;
    assert!(format!("{e:#}").contains("expected YYYY-MM"), "{e:#}");
    Ok(())
}

#[tokio::test]
async fn the_configuration_report_shows_anchors_crls_tls_allowlists_and_findings() -> Result<()> {
    let world = World::start(WorldOptions::default()).await?;
    let r: Value = serde_json::from_str(&report(&world, &["report", "config"])?)?;
    assert_eq!(r["institution_listener"]["allow"], json!(["127.0.0.0/8"]));
    assert!(r["institution_listener"]["tls"].as_str().is_some_and(|t| t.starts_with("TLS 1.3 only")));
    let anchors = r["hpki_anchors"].as_array().context("anchors")?;
    assert_eq!(anchors.len(), 1);
    assert!(anchors[0]["days_left"].as_i64().is_some_and(|d| d > 7000), "{anchors:?}");
    let crls = r["crls"].as_array().context("crls")?;
    assert_eq!(crls.len(), 5, "{crls:?}");
    assert!(crls.iter().all(|c| c["fresh"] == true));
    assert_eq!(r["record_keys"]["mode"], "600", "{}", r["record_keys"]);
    let findings: Vec<&str> = r["findings"].as_array().context("findings")?.iter().filter_map(Value::as_str).collect();
    assert!(findings.iter().any(|f| f.contains("accept_test_policies")), "{findings:?}");
    assert!(findings.iter().any(|f| f.contains("no abnormal-access rules")), "{findings:?}");
    assert!(r["retention"]["audit_log"].as_str().is_some_and(|t| t.contains("append-only")));
    Ok(())
}
