//! De-identified exports (FLOW-8) end to end, on SQLite and PostgreSQL:
//! records written through a real card session over mutual TLS, the
//! desk's opt-out through the CLI, then `hpki-gateway export research` —
//! its output checked for k-anonymity, columns and leaked identifiers by a
//! script that shares no code with the exporter (tests/python/check_kanon.py),
//! its report and its audit entry, and the pseudonyms' unlinkability.

use std::path::Path;

use anyhow::{Context, Result};
use hpki_e2e::{
    World, WorldOptions, gateway_cli, gateway_cli_raw, insert_card, ok, on_postgres, private_pcscd, python_json,
    session,
};
use hpki_profile::Profession;
use serde_json::{Value, json};

const CLINIC: &str = "Kanazawa Clinic";
const COLUMNS: &str = "pseudonym,age_band,region,month,kind,type,days";
const QIS: &str = "age_band,region,month,kind";

/// Today in Japan, YYYY-MM-DD, and yesterday.
fn days() -> (String, String) {
    let now = time::OffsetDateTime::now_utc() + time::Duration::hours(9);
    let f = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    (f(now.date() - time::Duration::days(1)), f(now.date()))
}

fn kanon(file: &Path, k: usize, forbidden: &[String]) -> Result<Value> {
    let k = k.to_string();
    let mut args: Vec<&std::ffi::OsStr> = vec![file.as_os_str(), k.as_ref(), QIS.as_ref(), COLUMNS.as_ref()];
    args.extend(forbidden.iter().map(std::ffi::OsStr::new));
    python_json("check_kanon.py", &args)
}

async fn exports(world: &mut World) -> Result<()> {
    let desk = world.terminal(CLINIC, "desk-1")?;
    let (image, _) = world.person_card(Profession::Doctor, "740001", CLINIC).await?;
    let pcscd = private_pcscd()?;
    let mut slot = insert_card(&pcscd, 0, &image)?;
    let mut client = world.connect(&desk).await?;
    let d = session(&mut client, &mut slot.card).await?;

    // Eight patients in their seventies, three in their forties, one in
    // their twenties (alone: suppressed at k = 3), one who objected to
    // secondary use and one without a consent.
    let births = [
        "1950-01-01",
        "1951-02-02",
        "1952-03-03",
        "1953-04-04",
        "1954-05-05",
        "1949-12-30",
        "1955-06-06",
        "1953-07-07",
        "1985-01-10",
        "1984-02-11",
        "1983-03-12",
        "2000-05-05",
        "1952-08-08",
        "1951-09-09",
    ];
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for (i, born) in births.iter().enumerate() {
        let name = format!("Kenkyu Taro {i}");
        let p = ok(client.post("/v1/patients", &json!({"name": name, "birth_date": born}), Some(&d)).await?);
        let pid = p["id"].as_str().context("id")?.to_owned();
        let enc = ok(client.post("/v1/encounters", &json!({"patient": pid}), Some(&d)).await?);
        let content = json!({"type": "vital_signs", "days": 7, "text": format!("自由記載 {name} 咳が続く")});
        ok(client.post("/v1/notes", &json!({"encounter": enc["id"], "content": content}), Some(&d)).await?);
        if i != 13 {
            world.gw.store.grant_consent(&pid, CLINIC, "test", 0, None).await?;
        }
        ids.push(pid);
        names.push(name);
    }
    gateway_cli(
        &world.config_path(),
        &["admin", "patient", "opt-out", "--patient", &ids[12], "--operator", "desk-clerk"],
    )?;
    assert_eq!(world.last_audit("admin.patient.opt_out").await.event.outcome, "ok");

    let (from, to) = days();
    let dir = world.path("research");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("export-1.csv");
    let out_arg = out.display().to_string();
    let export = |out: &str, k: &str, key: Option<&Path>| {
        let mut args = vec!["export", "research", "--from", &from, "--to", &to, "--out", out, "--k", k];
        let key_arg = key.map(|k| k.display().to_string());
        if let Some(key) = &key_arg {
            args.extend(["--key-file", key.as_str()]);
        }
        args.extend(["--operator", "research-desk"]);
        gateway_cli_raw(&world.config_path(), &args)
    };
    let (code, stdout, err) = export(&out_arg, "3", None)?;
    assert_eq!(code, 0, "{stdout}{err}");
    let report: Value = serde_json::from_str(&stdout)?;
    assert_eq!(
        (
            report["rows_exported"].as_u64(),
            report["rows_suppressed"].as_u64(),
            report["patients_opted_out"].as_u64(),
            report["patients_without_consent"].as_u64(),
            report["k_reached"].as_bool(),
            report["smallest_group"].as_u64()
        ),
        (Some(11), Some(1), Some(1), Some(1), Some(true), Some(3)),
        "{report}"
    );
    let written = std::fs::read(dir.join("export-1.csv.report.json"))?;
    assert_eq!(serde_json::from_slice::<Value>(&written)?, report, "the report is written beside the file");
    let audit = world.last_audit("export.research").await;
    assert_eq!(audit.event.actor, "admin:research-desk");
    assert!(audit.event.object.contains(&format!("report_sha256:{}", hpki_e2e::sha256_hex(&written))), "{audit:?}");

    // Independently: k-anonymous, the expected columns only, no patient
    // id, name or free text anywhere.
    let mut forbidden: Vec<String> = ids.clone();
    forbidden.extend(names.iter().cloned());
    forbidden.extend(["自由記載".to_owned(), "咳".to_owned(), CLINIC.to_owned()]);
    for b in births {
        forbidden.push(b.to_owned());
    }
    let first = kanon(&out, 3, &forbidden)?;
    assert_eq!((first["rows"].as_u64(), first["smallest_group"].as_u64()), (Some(11), Some(3)), "{first}");
    let text = std::fs::read_to_string(&out)?;
    assert!(text.contains("Hokuriku") && text.contains("70-79") && text.contains("vital_signs"), "{text}");

    // A second export, fresh key: no pseudonym in common. Under one key
    // file, two exports link.
    let (code, _, err) = export(&dir.join("export-2.csv").display().to_string(), "3", None)?;
    assert_eq!(code, 0, "{err}");
    let second = kanon(&dir.join("export-2.csv"), 3, &forbidden)?;
    let set = |v: &Value| v["pseudonyms"].as_array().cloned().unwrap_or_default();
    assert!(set(&first).iter().all(|p| !set(&second).contains(p)), "two exports without a shared key link");
    let key = dir.join("pseudonym.key");
    for n in [3, 4] {
        let (code, _, err) = export(&dir.join(format!("export-{n}.csv")).display().to_string(), "3", Some(&key))?;
        assert_eq!(code, 0, "{err}");
    }
    let (third, fourth) =
        (kanon(&dir.join("export-3.csv"), 3, &forbidden)?, kanon(&dir.join("export-4.csv"), 3, &forbidden)?);
    assert_eq!(set(&third), set(&fourth), "the same key links");

    // Bad input changes nothing: an existing file, k = 1.
    let before = std::fs::read(&out)?;
    let (code, _, err) = export(&out_arg, "3", None)?;
    assert!(code != 0 && err.contains("exists"), "{err}");
    assert_eq!(std::fs::read(&out)?, before);
    let refusal = world.last_audit("export.research").await;
    assert!(refusal.event.outcome == "refused" && refusal.event.reason.contains("exists"), "{refusal:?}");
    let (code, _, err) = export(&dir.join("export-k1.csv").display().to_string(), "1", None)?;
    assert!(code != 0 && err.contains("k must be at least 2"), "{err}");
    assert!(!dir.join("export-k1.csv").exists());
    assert_eq!(world.last_audit("export.research").await.event.outcome, "refused");
    // With k = 9 the forties and twenties go too.
    let (code, stdout, err) = export(&dir.join("export-k9.csv").display().to_string(), "9", None)?;
    assert_eq!(code, 0, "{err}");
    let strict: Value = serde_json::from_str(&stdout)?;
    assert_eq!((strict["rows_exported"].as_u64(), strict["rows_suppressed"].as_u64()), (Some(0), Some(12)), "{strict}");
    assert_eq!(strict["k_reached"], false, "nothing exported is no k reached");
    assert!(world.outbox_once_cleaned().await?.is_empty());
    Ok(())
}

fn options() -> WorldOptions {
    let research = hpki_gateway::config::ResearchSection {
        regions: [(CLINIC.to_owned(), "Hokuriku".to_owned())].into_iter().collect(),
        keep_fields: vec!["type".into(), "days".into()],
    };
    WorldOptions { research, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn de_identified_exports_flow_8_on_sqlite() -> Result<()> {
    let mut world = World::start(options()).await?;
    exports(&mut world).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn de_identified_exports_flow_8_on_postgres() -> Result<()> {
    on_postgres(options(), async |world| exports(world).await).await
}
