//! Erasure at the end of retention (DATA-8) end to end: records confirmed
//! with the doctor's card, a correction request on one, then `hpki-gateway
//! records erase --expired` run by the real binary with its clock five
//! years on (libfaketime): the dry run changes nothing; the run erases the
//! health content for good (record, containers, draft, correction request),
//! keeps tombstones that name the erasure's audit entry, wipes the patient's
//! identity once nothing of theirs is left, never touches the audit log nor
//! a record still in retention; and a backup taken before the erasure,
//! restored, does not bring the records back. SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use hpki_e2e::clinic_story::{ClinicStory, ok};
use hpki_e2e::{PgDatabase, WorldOptions, gateway_cli, gateway_cli_ahead};
use hpki_gateway::store::{Store, StoreConfig};
use serde_json::{Value, json};

/// Five years and a week on.
const LATER_DAYS: i64 = 5 * 366 + 7;

fn options(postgres: Option<String>) -> WorldOptions {
    // Notes are kept ten years here, so the note stays while the medical
    // records go.
    let mut years: BTreeMap<String, i64> = hpki_gateway::config::RetentionSection::default().years;
    years.insert("note".into(), 10);
    WorldOptions {
        postgres,
        patients: true,
        retention: hpki_gateway::config::RetentionSection { years },
        ..Default::default()
    }
}

fn erase(config: &Path, days: i64, dry_run: bool) -> Result<Value> {
    let mut args = vec!["records", "erase", "--expired", "--operator", "records-officer"];
    if dry_run {
        args.push("--dry-run");
    }
    let (code, out, err) = gateway_cli_ahead(config, days, &args)?;
    anyhow::ensure!(code == 0, "records erase: {code} {out}{err}");
    Ok(serde_json::from_str(&out)?)
}

async fn erasure(story: &mut ClinicStory, backup: bool) -> Result<()> {
    let config = story.world.config_path();
    let records = story.confirm(0..2).await?;
    let patient = story.patient.clone();
    // Another patient's note, still in retention at the erasure.
    let d = story.doctor_session().to_owned();
    let other = ok(story
        .client
        .post("/v1/patients", &json!({"name": "Nishi Ai", "birth_date": "1990-01-01"}), Some(&d))
        .await?)?;
    let other_id = other["id"].as_str().context("id")?.to_owned();
    let enc = ok(story.client.post("/v1/encounters", &json!({"patient": other_id}), Some(&d)).await?)?;
    let note = ok(story
        .client
        .post("/v1/notes", &json!({"encounter": enc["id"], "content": {"text": "経過良好"}}), Some(&d))
        .await?)?;
    let note_id = note["id"].as_str().context("note")?.to_owned();
    // The patient's correction request against the first record.
    let initial = story.world.enroll_patient(&patient, hpki_e2e::clinic_story::CLINIC)?;
    let mut portal = hpki_e2e::PatientClient::new(&story.world)?;
    let s = ok(portal.request("POST", "/p/v1/login", Some(&json!({"id": patient, "password": initial}))).await?)?;
    portal.token = s["session"].as_str().map(str::to_owned);
    portal.request("POST", "/p/v1/password", Some(&json!({"current": initial, "new": "ume-no-hana-2026"}))).await?;
    let c = ok(portal
        .request("POST", "/p/v1/corrections", Some(&json!({"record": records[0], "text": "日付が違います"})))
        .await?)?;
    let correction = c["id"].as_str().context("correction")?.to_owned();
    let full = story.world.path("backups/before-erasure");
    if backup {
        gateway_cli(&config, &["backup", "full", "--out", &full.display().to_string()])?;
    }
    let store = &story.world.gw.store;

    // Today nothing is due; five years on, the dry run names both
    // records and changes nothing.
    assert_eq!(erase(&config, 0, true)?["due"], json!([]));
    let plan = erase(&config, LATER_DAYS, true)?;
    let due: std::collections::BTreeSet<&str> =
        plan["due"].as_array().into_iter().flatten().filter_map(|d| d["record"].as_str()).collect();
    assert_eq!(due, records.iter().map(String::as_str).collect(), "{plan}");
    assert!(store.record(&records[0]).await?.is_some(), "a dry run erases nothing");
    assert_eq!(story.world.last_audit("admin.record.erase.plan").await.event.object, "due:2");

    // The erasure.
    let report = erase(&config, LATER_DAYS, false)?;
    assert_eq!(report["erased"].as_array().map(Vec::len), Some(2), "{report}");
    assert_eq!(report["patients_erased"], json!([patient]), "{report}");
    let audit = story.world.audit().await;
    for r in &records {
        assert!(store.record(r).await?.is_none(), "{r} is erased");
        assert!(store.record_signatures(r).await?.is_empty(), "{r}'s containers are erased");
        let t = store.tombstone(r).await?.context("tombstone")?;
        assert_eq!((t.kind.as_str(), t.retention_years, t.erased_by.as_str()), ("medical", 5, "admin:records-officer"));
        let entry = audit.iter().find(|e| Some(e.seq) == t.audit_seq).context("the tombstone's audit entry")?;
        assert_eq!(
            (entry.event.action.as_str(), entry.event.object.clone()),
            ("admin.record.erase", format!("record:{r} kind:medical"))
        );
    }
    assert!(store.correction(&correction).await?.is_none(), "the correction request went with its record");
    let wiped = store.patient(&patient).await?.context("the patient id stays")?;
    assert_eq!((wiped.name.as_str(), wiped.name_kanji.as_deref(), wiped.birth_date.as_str()), ("", None, ""));
    assert!(store.account(&patient).await?.is_none(), "the patient's account is gone");
    refused_sign_in(&mut portal, &patient).await?;
    assert!(store.record(&note_id).await?.is_some(), "a record in retention stays");
    // The audit log is never erased: what it said of the patient is there.
    assert!(!store.audit_about_patient(&patient).await?.is_empty());
    assert!(story.world.chain_verifies().await);
    assert!(story.world.outbox_once_cleaned().await?.is_empty(), "every erasure has its entry");
    assert_eq!(erase(&config, LATER_DAYS, false)?["erased"], json!([]), "erased once");

    if backup {
        // The backup from before the erasure, restored into a new data
        // directory five years on: retention is applied again at once.
        let mut restored = hpki_gateway::config::Config::load(&config)?;
        let dir = story.world.path("restored-data");
        restored.store.sqlite_dir = dir.clone();
        let restored_config = story.world.path("restored.toml");
        restored.save(&restored_config)?;
        let (code, out, err) = gateway_cli_ahead(
            &restored_config,
            LATER_DAYS,
            &["backup", "restore", "--from", &full.display().to_string(), "--operator", "sato-it"],
        )?;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("retention re-applied: 2 records"), "{out}");
        let again = Store::open(&StoreConfig::Sqlite { dir }).await?;
        for r in &records {
            assert!(again.record(r).await?.is_none(), "{r} came back with the backup");
            assert!(again.tombstone(r).await?.is_some());
        }
        assert_eq!(again.patient(&patient).await?.context("patient")?.name, "");
        assert!(again.record(&note_id).await?.is_some());
        again.close().await;
    }
    Ok(())
}

async fn refused_sign_in(portal: &mut hpki_e2e::PatientClient, patient: &str) -> Result<()> {
    portal.token = None;
    let (status, body) =
        portal.request("POST", "/p/v1/login", Some(&json!({"id": patient, "password": "ume-no-hana-2026"}))).await?;
    anyhow::ensure!(status == 401 && body["error"] == "invalid_credentials", "{status} {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_at_the_end_of_retention_data_8_on_sqlite() -> Result<()> {
    let mut story = ClinicStory::start(options(None)).await?;
    erasure(&mut story, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_at_the_end_of_retention_data_8_on_postgres() -> Result<()> {
    let db = PgDatabase::create().await?;
    let result = async {
        let mut story = ClinicStory::start(options(Some(db.url.clone()))).await?;
        let r = erasure(&mut story, false).await;
        story.world.gw.store.close().await;
        r
    }
    .await;
    db.drop_db().await;
    result
}
