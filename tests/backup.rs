//! DATA-7: backups of the embedded store taken while the gateway runs, a
//! differential after more work, the data directory destroyed, and full +
//! differential restored: every confirmed record (readable through a
//! restarted gateway) and the audit chain are back; each run is audited.

use anyhow::{Context, Result};
use hpki_e2e::clinic_story::ClinicStory;
use hpki_e2e::{WorldOptions, gateway_cli, gateway_cli_raw, sha256_hex};

/// `hpki-gateway ARGS…`: exit code and everything it printed.
fn gateway_raw(config: &std::path::Path, args: &[&str]) -> Result<(i32, String)> {
    let (code, out, err) = gateway_cli_raw(config, args)?;
    Ok((code, out + &err))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_and_differential_backups_restore_every_record_and_the_audit_chain() -> Result<()> {
    let mut story = ClinicStory::start(WorldOptions::default()).await?;
    let config = story.world.config_path();
    let mut records = story.confirm(0..3).await?;

    // Full backup while the gateway serves.
    let full = story.world.path("backups/full-1");
    let full_s = full.display().to_string();
    let out = gateway_cli(&config, &["backup", "full", "--out", &full_s])?;
    assert!(out.starts_with("backup.full: "), "{out}");

    // More work, then a differential against that full backup.
    records.extend(story.confirm(3..5).await?);
    let diff = story.world.path("backups/diff-1");
    let diff_s = diff.display().to_string();
    gateway_cli(&config, &["backup", "diff", "--since", &full_s, "--out", &diff_s])?;
    let size = |dir: &std::path::Path| -> Result<u64> {
        Ok(std::fs::read_dir(dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
    };
    let (full_bytes, diff_bytes) = (size(&full)?, size(&diff)?);
    println!("full backup {full_bytes} bytes, differential {diff_bytes} bytes");
    assert!(diff_bytes < full_bytes, "the differential ({diff_bytes}) is not smaller than the full ({full_bytes})");

    // Each run is in the audit log: who, what, and the manifest checksum.
    let audit = story.world.audit().await;
    for (action, dir) in [("backup.full", &full), ("backup.diff", &diff)] {
        let manifest = std::fs::read(dir.join("manifest.json"))?;
        let e = audit.iter().find(|e| e.event.action == action).with_context(|| format!("{action} not audited"))?;
        assert_eq!((e.event.actor.as_str(), e.event.outcome.as_str()), ("admin:sato-it", "ok"));
        assert!(e.event.object.ends_with(&format!("manifest-sha256:{}", sha256_hex(&manifest))), "{:?}", e.event);
    }
    let (code, text) = gateway_raw(&config, &["backup", "verify", "--from", &diff_s])?;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("checksums match, audit chain intact"), "{text}");

    // A changed byte in a copy of the differential is caught, as is a
    // differential without its own full backup.
    let bad = story.world.path("backups/diff-bad");
    std::fs::create_dir_all(&bad)?;
    for e in std::fs::read_dir(&diff)? {
        let e = e?;
        std::fs::copy(e.path(), bad.join(e.file_name()))?;
    }
    let pages = bad.join("identity.db.pages");
    let mut bytes = std::fs::read(&pages)?;
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&pages, bytes)?;
    let (code, text) = gateway_raw(&config, &["backup", "verify", "--from", &bad.display().to_string()])?;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");
    let (code, text) = gateway_raw(&config, &["backup", "verify", "--from", &diff_s, "--full", &diff_s])?;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not the one this differential was made from"), "{text}");
    // Restoring over a data directory in use is refused.
    let (code, text) = gateway_raw(&config, &["backup", "restore", "--from", &diff_s])?;
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is not empty"), "{text}");
    let refused = story.world.last_audit("backup.restore").await;
    assert_eq!((refused.event.outcome.as_str(), refused.event.actor.as_str()), ("refused", "admin:sato-it"));
    assert!(refused.event.reason.contains("is not empty"), "{:?}", refused.event);

    // Lose the data directory.
    let audit_before = story.world.audit().await.len();
    story.world.gw.store.close().await;
    std::fs::remove_dir_all(story.world.path("data"))?;

    // Restore full + differential into the empty place.
    let out = gateway_cli(&config, &["backup", "restore", "--from", &diff_s])?;
    assert!(out.contains("restored the differential backup"), "{out}");

    // Every confirmed record is back, readable through a gateway started on
    // the restored store, and the restored log names every confirmation,
    // the full backup (the differential's own entry came after its
    // snapshot) and the restore itself.
    let audit = story.check_restored(&records).await?;
    assert!(audit.iter().any(|e| e.event.action == "backup.full"));
    assert!(audit_before > 0);
    let restore = audit.iter().rev().find(|e| e.event.action == "backup.restore").context("restore not audited")?;
    assert_eq!(restore.event.actor, "admin:sato-it");
    assert!(restore.event.object.contains(&diff_s), "{:?}", restore.event);
    Ok(())
}
