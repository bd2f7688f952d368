//! DATA-7 on PostgreSQL, done as docs/backup.md says: a private cluster
//! with WAL archiving, a `pg_basebackup` taken while the gateway serves and
//! recorded with `hpki-gateway backup record`, more confirmed records after
//! it, then the server dies and its data directory is lost; the base backup
//! plus the archived WAL are restored, and a gateway on the restored server
//! shows every confirmed record and a whole audit chain, including the
//! record of the backup run.

use anyhow::{Context, Result};
use hpki_e2e::clinic_story::ClinicStory;
use hpki_e2e::pg_cluster::PgCluster;
use hpki_e2e::{WorldOptions, gateway_cli, gateway_cli_raw, sha256_hex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_backup_and_the_wal_archive_restore_every_record_and_the_audit_chain() -> Result<()> {
    let cluster = PgCluster::start()?;
    cluster.psql("postgres", "CREATE DATABASE hpki")?;
    let opts = WorldOptions { postgres: Some(cluster.url("hpki")), ..WorldOptions::default() };
    let mut story = ClinicStory::start(opts).await?;
    let config = story.world.config_path();
    let mut records = story.confirm(0..3).await?;

    // The weekly base backup, while the gateway serves, checked by
    // PostgreSQL's own tool and recorded in the gateway's audit log.
    let base = cluster.base_backup("base-1")?;
    let base_s = base.display().to_string();
    cluster.run("pg_verifybackup", &[&base_s])?;
    let out = gateway_cli(&config, &["backup", "record", "--pg-basebackup", &base_s])?;
    assert!(out.starts_with(&format!("backup.pg_basebackup: {base_s} (plain, ")), "{out}");
    let manifest_sha = sha256_hex(&std::fs::read(base.join("backup_manifest"))?);
    let recorded = story.world.last_audit("backup.pg_basebackup").await;
    assert_eq!((recorded.event.actor.as_str(), recorded.event.outcome.as_str()), ("admin:sato-it", "ok"));
    assert!(
        recorded.event.object.starts_with(&format!("{base_s} manifest-sha256:{manifest_sha} wal:1/")),
        "{:?}",
        recorded.event
    );

    // What is not a whole base backup is refused, and the refusal recorded.
    let bad = cluster.root.join("base-bad");
    std::fs::create_dir_all(&bad)?;
    std::fs::copy(base.join("backup_manifest"), bad.join("backup_manifest"))?;
    std::fs::write(bad.join("PG_VERSION"), std::fs::read(base.join("PG_VERSION"))?)?;
    let (code, _, err) =
        gateway_cli_raw(&config, &["backup", "record", "--pg-basebackup", &bad.display().to_string()])?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is missing"), "{err}");
    let manifest = std::fs::read_to_string(bad.join("backup_manifest"))?;
    std::fs::write(bad.join("backup_manifest"), manifest.replacen("\"Size\": ", "\"Size\": 1", 1))?;
    let (code, _, err) =
        gateway_cli_raw(&config, &["backup", "record", "--pg-basebackup", &bad.display().to_string()])?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("checksum mismatch"), "{err}");
    let refused = story.world.last_audit("backup.pg_basebackup").await;
    assert_eq!(refused.event.outcome, "refused");
    assert!(refused.event.reason.contains("checksum mismatch"), "{:?}", refused.event);

    // More work after the base backup: it reaches the archive as WAL only.
    records.extend(story.confirm(3..5).await?);
    cluster.archive_current_wal()?;

    // The disaster: the server dies and its data directory is gone.
    story.world.gw.store.close().await;
    cluster.crash_and_lose_data()?;

    // Restore: base backup + archived WAL, then the chain and the records.
    cluster.restore(&base).with_context(|| cluster.log())?;
    // Every record is back and readable, including those only the archived
    // WAL held, and the log names the base backup's own record.
    let audit = story.check_restored(&records).await?;
    let runs: Vec<_> = audit.iter().filter(|e| e.event.action == "backup.pg_basebackup").collect();
    assert_eq!(runs.iter().map(|e| e.event.outcome.as_str()).collect::<Vec<_>>(), ["ok", "refused", "refused"]);
    assert_eq!(runs[0].event.object, recorded.event.object);
    Ok(())
}

#[tokio::test]
async fn recording_a_base_backup_is_refused_on_the_sqlite_store() -> Result<()> {
    let world = hpki_e2e::World::start(WorldOptions::default()).await?;
    let before = world.audit().await.len();
    let dir = world.path("nothing").display().to_string();
    let (code, _, err) = gateway_cli_raw(&world.config_path(), &["backup", "record", "--pg-basebackup", &dir])?;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the store is SQLite"), "{err}");
    assert_eq!(world.audit().await.len(), before, "a refused command on the wrong store changed the log");
    Ok(())
}
